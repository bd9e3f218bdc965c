// The game page's computer review (GET /api/games/{id}/review, or the socket's `review`
// event): who played how well, and which moves lost what. Only DOM nodes and textContent:
// every string from the server stays text.
import { el, playerLabel } from "./common.js";

/** The judgments, by NAG: the glyph in the move list and the class that colours it. */
export const JUDGMENTS = {
  6: { glyph: "?!", kind: "inaccuracy", word: "Inaccuracy" },
  2: { glyph: "?", kind: "mistake", word: "Mistake" },
  4: { glyph: "??", kind: "blunder", word: "Blunder" },
};

/** The judgment of a reviewed move as JUDGMENTS has it, or null (not judged, or unknown). */
export function judgmentOf(move) {
  if (!move || !move.judgment) return null;
  return JUDGMENTS[move.judgment.nag] || null;
}

/** Whether ``review`` is a done review of exactly the moves ``game`` has now. */
export function isReviewOf(review, game) {
  if (!review || review.status !== "done" || !Array.isArray(review.moves)) return false;
  const moves = game.moves || [];
  if (review.moves.length !== moves.length) return false;
  return review.moves.every((move, index) => move && move.uci === moves[index].uci);
}

/** One line on a review still to come ("" when there is none to wait for). */
export function pendingText(status) {
  if (!status) return "";
  if (status.status === "queued") {
    const ahead = Number(status.ahead) || 0;
    return ahead > 0
      ? `Computer review queued (${ahead} ${ahead === 1 ? "game" : "games"} ahead)…`
      : "Computer review queued…";
  }
  if (status.status === "running") {
    const progress = status.progress || {};
    const done = Number(progress.done);
    const total = Number(progress.total);
    return total > 0 ? `Computer review running: ${done} of ${total} positions…` : "Computer review running…";
  }
  return "";
}

function figure(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function percent(value) {
  const text = figure(value, 0);
  return text === "–" ? text : `${text}%`;
}

/**
 * The summary of a done review: per player the accuracy, the average centipawn loss and the
 * count of each judgment, as a table (one row per side, ``data-side`` on each).
 */
export function summaryTable(review, game) {
  const head = el(
    "tr",
    {},
    el("th", { scope: "col", class: "name" }, "Player"),
    el("th", { scope: "col" }, "Accuracy"),
    el("th", { scope: "col" }, el("abbr", { title: "Average centipawn loss" }, "ACPL")),
    ...[6, 2, 4].map((nag) =>
      el(
        "th",
        { scope: "col", class: `nag ${JUDGMENTS[nag].kind}` },
        el("abbr", { title: `${JUDGMENTS[nag].word}s` }, JUDGMENTS[nag].glyph),
      ),
    ),
  );
  const rows = ["white", "black"].map((side) => {
    const figures = review[side] || {};
    return el(
      "tr",
      { "data-side": side },
      el("th", { scope: "row", class: "name" }, playerLabel(game[side])),
      el("td", { class: "accuracy" }, percent(figures.accuracy)),
      el("td", { class: "acpl" }, figure(figures.acpl, 0)),
      el("td", { class: "inaccuracy" }, figure(figures.inaccuracy, 0)),
      el("td", { class: "mistake" }, figure(figures.mistake, 0)),
      el("td", { class: "blunder" }, figure(figures.blunder, 0)),
    );
  });
  return el("table", { class: "summary" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

/** "grandmaster-pvs, depth 6" or "…, 200000 nodes": how the review was computed. */
export function budgetText(review) {
  const budget = review.budget || {};
  const parts = [];
  if (review.engine) parts.push(String(review.engine));
  if (budget.depth) parts.push(`depth ${budget.depth}`);
  if (budget.nodes) parts.push(`${budget.nodes} nodes`);
  return parts.join(", ");
}
