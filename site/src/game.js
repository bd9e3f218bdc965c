// The game page: one game's socket (snapshot, then events, resumed with since=), the board
// (chessground), the move list with clocks, the evaluation bar, graph and engine line, and
// the computer review once the game is finished (fetched, or pushed by the socket).
import { Chessground } from "chessground";
import { Chess } from "chessops/chess";
import { parseFen, makeFen } from "chessops/fen";
import { parseUci } from "chessops/util";
import { makeSanAndPlay } from "chessops/san";
import { parsePgn, parseComment } from "chessops/pgn";
import {
  LiveSocket,
  applyEvent,
  clocksNow,
  el,
  formatClock,
  formatDelay,
  formatResult,
  formatScore,
  frameThrottle,
  getJson,
  idFromPath,
  playerLabel,
  showConnection,
  startPly,
  turnOf,
  uciSquares,
  whiteShare,
} from "./common.js";
import { budgetText, isReviewOf, judgmentOf, pendingText, summaryTable } from "./review.js";

const gameId = idFromPath();
const $ = (id) => document.getElementById(id);

let game = null; // the Game JSON, kept current by the events
let fens = []; // fens[k]: the position after k half-moves
let checks = []; // checks[k]: is the side to move in check after k half-moves
const evals = new Map(); // ply -> the deepest evaluation known for that position
let viewPly = null; // null: follow the live position; else the ply shown
let orientation = "white";
let pgnEvalsLoaded = false;
let review = null; // the done review of the game's moves as they are, or null
let reviewStatus = null; // {status: "queued" | "running", ...} while one is awaited
let reviewVersion = 0; // bumped when review changes: the move list is redrawn
let reviewAsk = 0; // bumped per request and on every change, so a late answer is dropped
let reviewTimer = null;
const REVIEW_POLL_MS = 5000;

const board = Chessground($("board"), {
  viewOnly: true,
  coordinates: true,
  animation: { enabled: true, duration: 150 },
  highlight: { lastMove: true, check: true },
  drawable: { enabled: false, visible: true },
  disableContextMenu: true,
});

const socket = new LiveSocket(`/ws/games/${encodeURIComponent(gameId)}`, {
  query: () => (game ? `since=${game.seq}` : ""),
  onMessage,
  onState: (state, seconds) => showConnection($("conn"), state, seconds),
});

function positionFrom(fen) {
  return Chess.fromSetup(parseFen(fen).unwrap()).unwrap();
}

/** Replay the moves from the initial position: the FEN and check of every ply. */
function rebuildPositions() {
  const pos = positionFrom(game.initial_fen);
  fens = [game.initial_fen];
  checks = [pos.isCheck()];
  for (const move of game.moves || []) {
    const parsed = parseUci(move.uci);
    if (!parsed) break;
    pos.play(parsed);
    fens.push(makeFen(pos.toSetup()));
    checks.push(pos.isCheck());
  }
  if (fens.length - 1 !== game.ply) {
    // The replay disagrees with the server: trust the server's position for the tip.
    fens[game.ply] = game.fen;
  }
}

function onMessage(msg) {
  if (msg.type === "snapshot") {
    game = msg.game;
    game.clockAt = performance.now();
    rebuildPositions();
    if (game.eval) evals.set(game.eval.ply, game.eval);
    if (viewPly !== null && viewPly > game.ply) viewPly = null;
    loadPgnEvals();
    loadTournament();
    syncReview();
    render();
    return;
  }
  if (!game) return;
  if (msg.type === "spectators") {
    game.spectators = msg.count;
    render();
    return;
  }
  if (typeof msg.seq !== "number") return;
  if (!applyEvent(game, msg)) {
    socket.resync(); // a gap: the server resends what was missed, or a snapshot
    return;
  }
  if (msg.type === "move") {
    dropReview(); // only a reopened game moves after its end
    fens[msg.ply] = msg.fen;
    fens.length = msg.ply + 1;
    checks[msg.ply] = /[+#]$/.test(msg.san);
    checks.length = msg.ply + 1;
  } else if (msg.type === "takeback") {
    fens.length = msg.ply + 1;
    fens[msg.ply] = msg.fen;
    checks.length = msg.ply + 1;
    for (const ply of [...evals.keys()]) if (ply > msg.ply) evals.delete(ply);
    if (viewPly !== null && viewPly > msg.ply) viewPly = msg.ply;
    dropReview(); // a correction reopened the game: its review is gone (see README)
  } else if (msg.type === "eval") {
    const known = evals.get(msg.ply);
    if (!known || !known.depth || (msg.depth || 0) >= known.depth || known.recorded) {
      evals.set(msg.ply, msg);
    }
  } else if (msg.type === "end") {
    loadReview();
  } else if (msg.type === "review") {
    takeReview(msg);
  }
  render();
}

// --- the review ---

function isFinished() {
  return game.status === "finished";
}

/** After a snapshot: keep the review only if it is still the game's, ask for one if due. */
function syncReview() {
  if (!isFinished() || (review && !isReviewOf(review, game))) dropReview();
  if (isFinished() && !review) loadReview();
}

/** Ask the server for the review (a finished game without one); polls while it is awaited. */
async function loadReview() {
  clearTimeout(reviewTimer);
  reviewTimer = null;
  if (!game || !isFinished() || review) return;
  const ask = ++reviewAsk;
  const answer = await getJson(`/api/games/${encodeURIComponent(gameId)}/review`);
  if (ask !== reviewAsk || !isFinished()) return; // the game changed, or the socket was first
  if (answer) takeReview(answer);
  else waitForReview();
}

/** A review answer (REST) or event (socket): a done review of these moves, or its status. */
function takeReview(answer) {
  reviewAsk += 1;
  clearTimeout(reviewTimer);
  reviewTimer = null;
  if (answer.status === "done") {
    if (!isReviewOf(answer, game)) return;
    review = answer;
    reviewStatus = null;
    reviewVersion += 1;
    addReviewEvals(answer);
  } else {
    reviewStatus = answer.status === "queued" || answer.status === "running" ? answer : null;
    if (reviewStatus) waitForReview();
  }
  render();
}

function waitForReview() {
  clearTimeout(reviewTimer);
  reviewTimer = setTimeout(() => {
    if (document.visibilityState === "visible") loadReview();
    else waitForReview();
  }, REVIEW_POLL_MS);
}

function dropReview() {
  reviewAsk += 1;
  clearTimeout(reviewTimer);
  reviewTimer = null;
  if (review || reviewStatus) reviewVersion += 1;
  review = null;
  reviewStatus = null;
}

/** The review's evaluation of every position fills the graph where nothing better is known. */
function addReviewEvals(done) {
  const scores = [done.initial, ...done.moves];
  scores.forEach((item, ply) => {
    if (!item || !item.score) return;
    const known = evals.get(ply);
    if (known && !(known.recorded && (item.depth || 0) >= (known.depth || 0))) return;
    const next = done.moves[ply]; // the move played from this position: its best and line
    const pv = next && next.variation && next.variation.length ? next.variation : undefined;
    let score = item.score;
    if (score.mate === 0) {
      // Checkmate on the board (the side to move is mated): the result says who won.
      const winner = game.result === "1-0" ? "white" : game.result === "0-1" ? "black" : undefined;
      score = { mate: 0, winner };
    }
    evals.set(ply, {
      ply,
      score,
      depth: item.depth,
      engine: done.engine,
      best: next ? next.best : undefined,
      pv,
      recorded: true,
    });
  });
}

/** Evaluations of earlier positions come from the PGN's [%eval] comments, once. */
async function loadPgnEvals() {
  if (pgnEvalsLoaded || !game.moves || game.moves.length === 0) return;
  pgnEvalsLoaded = true;
  let text;
  try {
    const response = await fetch(`/api/games/${encodeURIComponent(gameId)}/pgn`);
    if (!response.ok) return;
    text = await response.text();
  } catch {
    return;
  }
  const [parsed] = parsePgn(text);
  if (!parsed) return;
  let ply = 0;
  for (const node of parsed.moves.mainline()) {
    ply += 1;
    for (const comment of node.comments || []) {
      const ev = parseComment(comment).evaluation;
      if (!ev || evals.has(ply)) continue;
      const score = "mate" in ev ? { mate: ev.mate } : { cp: Math.round(ev.pawns * 100) };
      evals.set(ply, { ply, score, depth: ev.depth, recorded: true });
    }
  }
  render();
}

let tournamentLoaded = false;
async function loadTournament() {
  if (tournamentLoaded || !game.tournament) return;
  tournamentLoaded = true;
  const t = await getJson(`/api/tournaments/${encodeURIComponent(game.tournament)}`);
  if (!t) return;
  const crumbs = $("crumbs");
  crumbs.replaceChildren(
    el("a", { href: `/tournaments/${encodeURIComponent(t.id)}` }, t.name),
    game.round ? ` › round ${game.round}, board ${game.board}` : "",
  );
  if (t.delay > 0) {
    const notice = $("delay");
    notice.textContent = `Broadcast delayed by ${formatDelay(t.delay)}: moves appear ${formatDelay(t.delay)} after they are played.`;
    notice.hidden = false;
  }
}

// --- rendering ---

const render = frameThrottle(renderNow);

function shownPly() {
  return viewPly === null ? game.ply : viewPly;
}

function evalFor(ply) {
  if (game.eval && game.eval.ply === ply) {
    const known = evals.get(ply);
    if (!known || known.recorded || (game.eval.depth || 0) >= (known.depth || 0)) return game.eval;
  }
  return evals.get(ply) || null;
}

function renderNow() {
  if (!game) return;
  const ply = shownPly();
  const fen = fens[ply] || game.fen;
  const move = ply > 0 ? game.moves[ply - 1] : null;
  const ev = evalFor(ply);
  const best = ev && ev.best ? uciSquares(ev.best) : null;
  board.set({
    fen,
    orientation,
    turnColor: turnOf(fen),
    lastMove: move ? uciSquares(move.uci) : undefined,
    check: checks[ply] ? turnOf(fen) : false,
  });
  board.setAutoShapes(best ? [{ orig: best[0], dest: best[1], brush: "paleBlue" }] : []);
  const boardEl = $("board");
  boardEl.dataset.fen = fen;
  boardEl.dataset.ply = String(ply);
  boardEl.setAttribute(
    "aria-label",
    move
      ? `Position after ${moveLabel(ply - 1)} ${move.san}, ${turnOf(fen)} to move`
      : `Start position, ${turnOf(fen)} to move`,
  );
  renderPlayers();
  renderClocks();
  renderEval(ev, fen, ply);
  renderMoves(ply);
  renderGraph(ply);
  renderReview();
  const result = formatResult(game);
  $("result").textContent = result;
  $("result").hidden = !result;
  $("audience").textContent = `${game.spectators ?? 0} watching`;
  $("live").setAttribute("aria-pressed", String(viewPly === null));
  $("live").textContent = viewPly === null ? "● Live" : "Back to live";
  $("first").disabled = $("prev").disabled = ply === 0;
  $("next").disabled = $("last").disabled = ply === game.ply;
  document.title = `${playerLabel(game.white)} – ${playerLabel(game.black)}${result ? ` (${game.result})` : ""} · Grandmaster`;
}

function renderPlayers() {
  for (const side of ["white", "black"]) {
    const box = $(`player-${side}`);
    const player = game[side] || {};
    box.querySelector(".name").replaceChildren(
      playerLabel(player),
      player.rating ? el("span", { class: "rating" }, player.rating) : "",
    );
    // The side at the bottom is the orientation's: the boxes trade places on a flip.
    box.style.order = side === orientation ? "3" : "1";
  }
}

function renderClocks() {
  if (!game) return;
  const now = clocksNow(game, game.clockAt ?? performance.now(), performance.now());
  for (const side of ["white", "black"]) {
    const node = $(`player-${side}`).querySelector(".clock");
    node.textContent = formatClock(now[side]);
    node.classList.toggle("running", now.running === side);
  }
}

function moveLabel(index) {
  const absolute = startPly(game) + index;
  const number = Math.floor(absolute / 2) + 1;
  return absolute % 2 === 0 ? `${number}.` : `${number}…`;
}

function renderEval(ev, fen, ply) {
  const share = whiteShare(ev ? ev.score : null);
  const bar = $("evalbar");
  bar.querySelector(".white").style.transform = `scaleY(${share})`;
  bar.classList.toggle("flipped", orientation === "black");
  bar.dataset.score = ev ? formatScore(ev.score) : "";
  bar.setAttribute("aria-label", ev ? `Evaluation ${formatScore(ev.score)}` : "No evaluation yet");
  $("score").textContent = ev ? formatScore(ev.score) : "–";
  const meta = [];
  if (ev && ev.depth) meta.push(`depth ${ev.depth}`);
  if (ev && ev.engine) meta.push(ev.engine);
  $("engine-meta").textContent = ev ? meta.join(" · ") : "waiting for the engine";
  $("pv").textContent = ev && ev.pv && ev.pv.length ? pvSan(fen, ev.pv, ply) : "";
}

/** The engine's line in SAN with move numbers, from the position it was computed for. */
function pvSan(fen, pv, ply) {
  return numbered(sanMoves(fen, pv.slice(0, 12)), ply);
}

/** UCI moves from ``fen`` in SAN, up to the first that is not legal there. */
function sanMoves(fen, ucis) {
  let pos;
  try {
    pos = positionFrom(fen);
  } catch {
    return [];
  }
  const sans = [];
  for (const uci of ucis) {
    const move = parseUci(uci);
    if (!move) break;
    let san;
    try {
      san = makeSanAndPlay(pos, move);
    } catch {
      break;
    }
    if (san === "--") break;
    sans.push(san);
  }
  return sans;
}

/** "3… Nf6 4. d3": SAN moves played from the position after ``ply`` half-moves. */
function numbered(sans, ply) {
  const parts = [];
  let absolute = startPly(game) + ply;
  for (const san of sans) {
    const number = Math.floor(absolute / 2) + 1;
    if (absolute % 2 === 0) parts.push(`${number}. ${san}`);
    else parts.push(parts.length === 0 ? `${number}… ${san}` : san);
    absolute += 1;
  }
  return parts.join(" ");
}

let renderedMoves = "";
function renderMoves(ply) {
  const list = $("moves");
  const key = `${game.moves.length}:${game.seq}:${reviewVersion}`;
  if (key !== renderedMoves) {
    renderedMoves = key;
    const nodes = [];
    const offset = startPly(game) % 2;
    if (offset === 1 && game.moves.length) {
      nodes.push(el("span", { class: "num" }, `${Math.floor(startPly(game) / 2) + 1}.`));
      nodes.push(el("span", {}, "…"));
    }
    const reviewed = review && isReviewOf(review, game) ? review.moves : null;
    game.moves.forEach((move, index) => {
      const absolute = startPly(game) + index;
      if (absolute % 2 === 0) nodes.push(el("span", { class: "num" }, `${absolute / 2 + 1}.`));
      else if (index > 0 && nodes[nodes.length - 1].classList.contains("advice")) {
        // Black's move after a line under White's: a new row, as lichess does.
        nodes.push(el("span", { class: "num" }, `${Math.floor(absolute / 2) + 1}.`));
        nodes.push(el("span", {}, "…"));
      }
      const judged = reviewed ? reviewed[index] : null;
      const judgment = judgmentOf(judged);
      const advice = judgment ? adviceFor(judged, index) : null;
      const button = el(
        "button",
        {
          type: "button",
          "data-ply": index + 1,
          class: judgment ? judgment.kind : undefined,
          title: advice ? advice.comment : undefined,
          "aria-label": `${moveLabel(index)} ${move.san}${advice ? `, ${advice.comment}` : ""}${move.clock_ms !== undefined ? `, ${formatClock(move.clock_ms)} left` : ""}`,
        },
        el(
          "span",
          { class: "mv" },
          el("span", { class: "san" }, move.san),
          judgment ? el("span", { class: "nag", "aria-hidden": "true" }, judgment.glyph) : "",
        ),
        move.clock_ms !== undefined ? el("span", { class: "clk" }, formatClock(move.clock_ms)) : "",
      );
      nodes.push(button);
      if (advice) {
        nodes.push(
          el(
            "div",
            { class: `advice ${judgment.kind}`, "data-ply": index + 1 },
            el("span", { class: "comment" }, advice.comment),
            advice.line ? el("span", { class: "line" }, advice.line) : "",
          ),
        );
      }
    });
    list.replaceChildren(...nodes);
  }
  let current = null;
  for (const button of list.querySelectorAll("button[aria-current]")) button.removeAttribute("aria-current");
  if (ply > 0) {
    current = list.querySelector(`button[data-ply="${ply}"]`);
    if (current) current.setAttribute("aria-current", "true");
  }
  if (current) {
    const top = current.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + current.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = top - list.clientHeight / 2;
    }
  } else if (ply === 0) {
    list.scrollTop = 0;
  }
}

/**
 * What a judged move (the review's ``moves[index]``) gets under it: lichess's comment
 * ("Blunder. Nf6 was best.", built here in SAN when the review has none) and the engine's
 * better line in SAN from the position before the move.
 */
function adviceFor(judged, index) {
  const judgment = judgmentOf(judged);
  const ucis = judged.variation && judged.variation.length ? judged.variation : [judged.best].filter(Boolean);
  const fen = fens[index];
  const sans = fen ? sanMoves(fen, ucis.slice(0, 8)) : [];
  let comment = typeof judged.judgment.comment === "string" ? judged.judgment.comment : "";
  if (!comment) comment = sans.length ? `${judgment.word}. ${sans[0]} was best.` : `${judgment.word}.`;
  return { comment, line: sans.length ? numbered(sans, index) : "" };
}

let renderedReview = -1;
function renderReview() {
  const status = $("review-status");
  const text = review ? "" : pendingText(reviewStatus);
  status.textContent = text;
  status.hidden = !text;
  if (renderedReview === reviewVersion) return;
  renderedReview = reviewVersion;
  const panel = $("review");
  panel.hidden = !review;
  if (!review) {
    $("review-summary").replaceChildren();
    $("review-budget").textContent = "";
    return;
  }
  $("review-budget").textContent = budgetText(review);
  $("review-summary").replaceChildren(summaryTable(review, game));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function renderGraph(ply) {
  const graph = $("graph");
  const last = Math.max(game.ply, 1);
  const width = 600;
  const x = (k) => (k / last) * width;
  const y = (score) => 100 - whiteShare(score) * 100;
  // The area under White's share, from the first evaluated position to the last.
  const points = [];
  for (let k = 0; k <= game.ply; k++) {
    const ev = evalFor(k);
    if (ev) points.push(`${x(k).toFixed(1)},${y(ev.score).toFixed(1)}`);
  }
  const known = points.length;
  const d = known
    ? `M${points[0].split(",")[0]},100 L${points.join(" L")} L${points[known - 1].split(",")[0]},100 Z`
    : "";
  graph.setAttribute("viewBox", `0 0 ${width} 100`);
  graph.setAttribute("preserveAspectRatio", "none");
  graph.replaceChildren(
    svg("path", { class: "area", d }),
    svg("line", { class: "mid", x1: 0, y1: 50, x2: width, y2: 50 }),
    svg("line", { class: "cursor", x1: x(ply), y1: 0, x2: x(ply), y2: 100 }),
  );
  graph.dataset.points = String(known);
}

// --- navigation ---

function go(ply) {
  if (!game) return;
  const target = Math.max(0, Math.min(game.ply, ply));
  viewPly = target === game.ply && viewPly === null ? null : target;
  render();
}

/** One move forward; reaching the last move follows the game live again. */
function next() {
  if (shownPly() + 1 >= game.ply) goLive();
  else go(shownPly() + 1);
}

function goLive() {
  viewPly = null;
  render();
}

$("moves").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-ply]");
  if (button) go(Number(button.dataset.ply));
});
$("first").addEventListener("click", () => go(0));
$("prev").addEventListener("click", () => go(shownPly() - 1));
$("next").addEventListener("click", next);
$("last").addEventListener("click", goLive);
$("live").addEventListener("click", goLive);
$("flip").addEventListener("click", flip);
$("graph").addEventListener("click", (event) => {
  if (!game) return;
  const rect = event.currentTarget.getBoundingClientRect();
  go(Math.round(((event.clientX - rect.left) / rect.width) * game.ply));
});

function flip() {
  orientation = orientation === "white" ? "black" : "white";
  $("flip").setAttribute("aria-pressed", String(orientation === "black"));
  render();
}

document.addEventListener("keydown", (event) => {
  if (!game || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
  const actions = {
    ArrowLeft: () => go(shownPly() - 1),
    ArrowRight: next,
    ArrowUp: () => go(0),
    Home: () => go(0),
    ArrowDown: goLive,
    End: goLive,
    f: flip,
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});

$("pgn").href = `/api/games/${encodeURIComponent(gameId)}/pgn`;
$("pgn").setAttribute("download", `${gameId}.pgn`);
setInterval(renderClocks, 100);
socket.connect();
