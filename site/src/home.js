// The home page: live and recent tournaments and games. There is no site-wide socket, so
// the two list endpoints are polled every few seconds (only while the page is visible).
import { Chessground } from "chessground";
import { el, formatResult, formatTimeControl, getJson, playerLabel, turnOf, uciSquares } from "./common.js";

const POLL_MS = 3000;
const MAX_LIVE_BOARDS = 12;
const $ = (id) => document.getElementById(id);
const liveBoards = new Map(); // game id -> {card, cg}
let timer = null;

async function refresh() {
  clearTimeout(timer);
  const [tournaments, games] = await Promise.all([
    getJson("/api/tournaments"),
    getJson("/api/games?limit=50"),
  ]);
  const conn = $("conn");
  if (tournaments === null && games === null) {
    conn.dataset.state = "offline";
    conn.textContent = "cannot reach the server: retrying";
  } else {
    conn.dataset.state = "live";
    conn.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }
  if (tournaments) drawTournaments(tournaments.tournaments || []);
  if (games) drawGames(games.games || []);
  if (document.visibilityState === "visible") timer = setTimeout(refresh, POLL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
  else clearTimeout(timer);
});

const FORMATS = { round_robin: "Round robin", double_round_robin: "Double round robin", swiss: "Swiss" };
const STATUS = { created: "upcoming", running: "live", finished: "finished", started: "live" };

function drawTournaments(list) {
  const order = { running: 0, created: 1, finished: 2 };
  const sorted = [...list].sort((a, b) => (order[a.status] ?? 3) - (order[b.status] ?? 3));
  const cards = sorted.map((t) =>
    el(
      "a",
      { class: "card", href: `/tournaments/${encodeURIComponent(t.id)}`, "data-tournament": t.id },
      el("div", { class: "title" }, t.name, " ", el("span", { class: `tag ${t.status}` }, STATUS[t.status] || t.status)),
      el(
        "div",
        { class: "sub" },
        [FORMATS[t.format] || t.format, `${(t.players || []).length} players`, t.rounds_total ? `${t.rounds_total} rounds` : "", formatTimeControl(t.clock)]
          .filter(Boolean)
          .join(" · "),
      ),
    ),
  );
  $("tournaments").replaceChildren(...(cards.length ? cards : [el("p", { class: "muted" }, "No tournaments yet.")]));
}

function title(game) {
  const side = (p) => el("span", {}, playerLabel(p), p && p.rating ? el("span", { class: "muted" }, ` ${p.rating}`) : "");
  return el("div", { class: "title" }, side(game.white), " – ", side(game.black));
}

function where(game) {
  return game.round ? `round ${game.round}, board ${game.board}` : "";
}

function drawGames(list) {
  const live = list.filter((g) => g.status === "started");
  const recent = list.filter((g) => g.status !== "started").slice(0, 30);
  // Live games keep their card and board between polls; only the position changes.
  const keep = new Set(live.slice(0, MAX_LIVE_BOARDS).map((g) => g.id));
  for (const [id, entry] of liveBoards) {
    if (!keep.has(id)) {
      entry.cg.destroy();
      liveBoards.delete(id);
    }
  }
  const liveCards = live.map((game, index) => {
    let entry = liveBoards.get(game.id);
    if (!entry && index < MAX_LIVE_BOARDS) {
      const boardNode = el("div", { class: "mini-board", "aria-hidden": "true" });
      const sub = el("div", { class: "sub" });
      const card = el(
        "a",
        { class: "card", href: `/games/${encodeURIComponent(game.id)}`, "data-game": game.id },
        boardNode,
        title(game),
        sub,
      );
      const cg = Chessground(boardNode, {
        viewOnly: true,
        coordinates: false,
        animation: { enabled: false },
        drawable: { enabled: false, visible: false },
      });
      entry = { card, cg, sub };
      liveBoards.set(game.id, entry);
    }
    if (!entry) return gameCard(game);
    const last = game.moves && game.moves.length ? game.moves[game.moves.length - 1] : null;
    entry.cg.set({ fen: game.fen, turnColor: turnOf(game.fen), lastMove: last ? uciSquares(last.uci) : undefined });
    entry.card.dataset.fen = game.fen || "";
    entry.sub.replaceChildren(el("span", { class: "tag started" }, "live"), ` move ${Math.floor((game.ply || 0) / 2) + 1}`, where(game) ? ` · ${where(game)}` : "");
    return entry.card;
  });
  $("live-games").replaceChildren(...(liveCards.length ? liveCards : [el("p", { class: "muted" }, "No game is being played right now.")]));
  const recentCards = recent.map(gameCard);
  $("recent-games").replaceChildren(...(recentCards.length ? recentCards : [el("p", { class: "muted" }, "No finished games yet.")]));
}

function gameCard(game) {
  const status = game.status === "finished" ? formatResult(game) : STATUS[game.status] || game.status;
  return el(
    "a",
    { class: "card", href: `/games/${encodeURIComponent(game.id)}`, "data-game": game.id },
    title(game),
    el("div", { class: "sub" }, el("span", { class: `tag ${game.status}` }, status), where(game) ? ` · ${where(game)}` : ""),
  );
}

refresh();
