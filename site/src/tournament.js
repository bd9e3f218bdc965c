// The tournament page: every board of a round on one socket (/ws/tournaments/{id}),
// standings with tie-breaks and the crosstable. Messages only change state and mark what
// is stale; drawing happens once per animation frame, for the boards that changed.
import { Chessground } from "chessground";
import {
  LiveSocket,
  applyEvent,
  clocksNow,
  el,
  formatClock,
  formatDelay,
  formatScore,
  formatTimeControl,
  frameThrottle,
  idFromPath,
  playerLabel,
  showConnection,
  turnOf,
  uciSquares,
  whiteShare,
} from "./common.js";

const tournamentId = idFromPath();
const $ = (id) => document.getElementById(id);

let tournament = null; // the Tournament JSON, rounds and standings kept current
const games = new Map(); // game id -> Game JSON
let selectedRound = roundFromHash(); // null: follow the current round
const dirtyGames = new Set();
const stale = { rounds: true, boards: true, tables: true, header: true };
let boards = new Map(); // game id -> the mini-board's nodes and its chessground

const socket = new LiveSocket(`/ws/tournaments/${encodeURIComponent(tournamentId)}`, {
  query: () => {
    const parts = [];
    for (const [id, game] of games) parts.push(`${id}:${game.seq}`);
    return parts.length ? `since=${parts.join(",")}` : "";
  },
  onMessage,
  onState: (state, seconds) => showConnection($("conn"), state, seconds),
});

function roundFromHash() {
  const match = /^#round-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function onMessage(msg) {
  switch (msg.type) {
    case "tournament":
      tournament = msg.tournament;
      markAll();
      break;
    case "round": {
      if (!tournament) return;
      const rounds = tournament.rounds || (tournament.rounds = []);
      const index = rounds.findIndex((r) => r.round === msg.round.round);
      if (index >= 0) rounds[index] = msg.round;
      else rounds.push(msg.round);
      rounds.sort((a, b) => a.round - b.round);
      markAll();
      break;
    }
    case "standings":
      if (!tournament) return;
      tournament.standings = msg.standings;
      stale.tables = true;
      break;
    case "snapshot":
      msg.game.clockAt = performance.now();
      games.set(msg.game.id, msg.game);
      dirtyGames.add(msg.game.id);
      break;
    case "spectators":
    case "pong":
      return;
    default: {
      const game = games.get(msg.game);
      if (!game || typeof msg.seq !== "number") return;
      if (!applyEvent(game, msg)) {
        socket.resync(); // a gap in this game: resume every game from where it is
        return;
      }
      dirtyGames.add(msg.game);
      if (msg.type === "end") stale.tables = true;
    }
  }
  draw();
}

function markAll() {
  stale.rounds = stale.boards = stale.tables = stale.header = true;
}

const draw = frameThrottle(drawNow);

function currentRound() {
  const rounds = (tournament && tournament.rounds) || [];
  if (!rounds.length) return null;
  if (selectedRound !== null) {
    const chosen = rounds.find((r) => r.round === selectedRound);
    if (chosen) return chosen;
  }
  const running = rounds.filter((r) => r.status === "running");
  return running.length ? running[running.length - 1] : rounds[rounds.length - 1];
}

function drawNow() {
  if (!tournament) return;
  if (stale.header) drawHeader();
  if (stale.rounds) drawRounds();
  if (stale.boards) drawBoards();
  for (const id of dirtyGames) {
    const board = boards.get(id);
    if (board) drawBoard(board, games.get(id));
  }
  dirtyGames.clear();
  if (stale.tables) {
    drawStandings();
    drawCrosstable();
  }
  stale.header = stale.rounds = stale.boards = stale.tables = false;
}

function player(id) {
  return (tournament.players || []).find((p) => p.id === id) || null;
}

function drawHeader() {
  $("title").textContent = tournament.name;
  document.title = `${tournament.name} · Grandmaster`;
  $("crumbs").textContent = tournament.name;
  const format = { round_robin: "Round robin", double_round_robin: "Double round robin", swiss: "Swiss" }[
    tournament.format
  ];
  const info = [
    format || tournament.format,
    `${(tournament.players || []).length} players`,
    tournament.rounds_total ? `${tournament.rounds_total} rounds` : "",
    formatTimeControl(tournament.clock),
    tournament.status,
  ].filter(Boolean);
  $("info").textContent = info.join(" · ");
  const notice = $("delay");
  notice.hidden = !(tournament.delay > 0);
  if (tournament.delay > 0) {
    notice.textContent = `Broadcast delayed by ${formatDelay(tournament.delay)}: every move appears ${formatDelay(tournament.delay)} after it is played.`;
  }
}

function drawRounds() {
  const shown = currentRound();
  const buttons = (tournament.rounds || []).map((r) =>
    el(
      "button",
      {
        type: "button",
        "data-round": r.round,
        "aria-pressed": String(shown !== null && shown.round === r.round),
        title: r.status,
      },
      `Round ${r.round}`,
      r.status === "running" ? el("span", { class: "sr-only" }, " (live)") : "",
    ),
  );
  if (!buttons.length) buttons.push(el("span", { class: "muted" }, "No round has been paired yet."));
  $("rounds").replaceChildren(...buttons);
}

$("rounds").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-round]");
  if (!button) return;
  selectedRound = Number(button.dataset.round);
  history.replaceState(null, "", `#round-${selectedRound}`);
  stale.rounds = stale.boards = true;
  draw();
});

let boardsKey = "";
function drawBoards() {
  const shown = currentRound();
  const key = shown ? `${shown.round}:${shown.pairings.map((p) => `${p.board}.${p.game}`).join(",")}` : "";
  if (key === boardsKey) {
    // The same boards (a result or a start changed the round): redraw them, keep the DOM.
    for (const card of boards.values()) {
      card.pairing = shown.pairings.find((p) => p.game === card.gameId) || card.pairing;
      dirtyGames.add(card.gameId);
    }
    return;
  }
  boardsKey = key;
  for (const board of boards.values()) board.cg.destroy();
  boards = new Map();
  const cards = [];
  for (const pairing of shown ? shown.pairings : []) {
    const card = makeBoard(pairing);
    cards.push(card.root);
    if (pairing.game) boards.set(pairing.game, card);
  }
  $("boards").replaceChildren(...cards);
  for (const card of boards.values()) {
    card.cg = Chessground(card.boardNode, {
      viewOnly: true,
      coordinates: false,
      animation: { enabled: false },
      drawable: { enabled: false, visible: false },
      highlight: { lastMove: true, check: true },
    });
    drawBoard(card, games.get(card.gameId));
  }
  const byes = (shown && shown.byes) || [];
  $("byes").textContent = byes.length
    ? `Not paired: ${byes.map((b) => `${playerLabel(player(b.player))} (${b.kind === "free" ? "free round" : `bye, ${b.points}`})`).join(", ")}`
    : "";
}

function makeBoard(pairing) {
  const white = player(pairing.white);
  const black = player(pairing.black);
  const row = (side, who) =>
    el(
      "div",
      { class: `row ${side}` },
      el("span", { class: "name" }, playerLabel(who), who && who.rating ? el("span", { class: "rating muted" }, ` ${who.rating}`) : ""),
      el("span", { class: "clk" }, ""),
    );
  const top = row("black", black);
  const bottom = row("white", white);
  const bar = el("div", { class: "evalbar", "aria-hidden": "true" }, el("div", { class: "white" }));
  const boardNode = el("div", { class: "board" });
  const result = el("span", { class: "res" }, "");
  const label = `Board ${pairing.board}: ${playerLabel(white)} – ${playerLabel(black)}`;
  const tag = pairing.game ? "a" : "div";
  const root = el(
    tag,
    {
      class: "mini",
      href: pairing.game ? `/games/${encodeURIComponent(pairing.game)}` : undefined,
      "data-board": pairing.board,
      "data-game": pairing.game || undefined,
      "aria-label": label,
    },
    el("div", { class: "row" }, el("span", { class: "boardno" }, `Board ${pairing.board}`), result),
    top,
    el("div", { class: "boardrow" }, bar, boardNode),
    bottom,
  );
  if (!pairing.game) result.textContent = displayResult(pairing.result);
  return { root, boardNode, bar, result, top, bottom, gameId: pairing.game, pairing, cg: null };
}

function displayResult(result) {
  return { "1/2-1/2": "½–½", "1-0": "1–0", "0-1": "0–1", "*": "" }[result] ?? result;
}

function drawBoard(card, game) {
  if (!card.cg) return;
  if (!game) {
    card.result.textContent = displayResult(card.pairing.result);
    return;
  }
  const moves = game.moves || [];
  const last = moves.length ? moves[moves.length - 1] : null;
  const lastUci = last ? last.uci : game.last_move;
  card.cg.set({
    fen: game.fen,
    turnColor: turnOf(game.fen),
    lastMove: lastUci ? uciSquares(lastUci) : undefined,
    check: last && /[+#]$/.test(last.san) ? turnOf(game.fen) : false,
  });
  card.root.dataset.fen = game.fen;
  card.root.dataset.ply = String(game.ply);
  const finished = game.status === "finished" || (game.result && game.result !== "*");
  card.result.textContent = finished ? displayResult(game.result) : game.status === "started" ? "live" : "";
  const score = game.eval && game.eval.ply === game.ply ? game.eval.score : null;
  card.bar.querySelector(".white").style.transform = `scaleY(${whiteShare(score)})`;
  card.bar.dataset.score = score ? formatScore(score) : "";
  drawClocks(card, game);
}

function drawClocks(card, game) {
  const now = clocksNow(game, game.clockAt ?? performance.now(), performance.now());
  for (const [side, row] of [
    ["white", card.bottom],
    ["black", card.top],
  ]) {
    const node = row.querySelector(".clk");
    node.textContent = formatClock(now[side]);
    node.classList.toggle("running", now.running === side);
  }
}

function tickClocks() {
  for (const card of boards.values()) {
    const game = games.get(card.gameId);
    if (game && game.status === "started") drawClocks(card, game);
  }
}

function formatPoints(points) {
  const whole = Math.floor(points);
  const half = points - whole >= 0.5;
  if (!half) return String(whole);
  return whole === 0 ? "½" : `${whole}½`;
}

function drawStandings() {
  const tiebreaks = tournament.tiebreaks || [];
  const head = el(
    "tr",
    {},
    el("th", { scope: "col" }, "#"),
    el("th", { scope: "col", class: "name" }, "Player"),
    el("th", { scope: "col" }, "Rating"),
    el("th", { scope: "col" }, "Points"),
    ...tiebreaks.map((t) => el("th", { scope: "col" }, t)),
    el("th", { scope: "col" }, "Played"),
  );
  const rows = (tournament.standings || []).map((s) => {
    const p = player(s.player) || {};
    return el(
      "tr",
      { "data-player": s.player },
      el("td", {}, s.rank),
      el("th", { scope: "row", class: "name" }, playerLabel(p), p.withdrawn ? " (withdrawn)" : ""),
      el("td", {}, p.rating || ""),
      el("td", { class: "points" }, formatPoints(s.points)),
      ...tiebreaks.map((t) => el("td", {}, formatTiebreak(s.tiebreaks ? s.tiebreaks[t] : undefined))),
      el("td", {}, s.played ?? ""),
    );
  });
  $("standings").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function formatTiebreak(value) {
  if (value === undefined || value === null) return "";
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
}

const SCORE = {
  white: { "1-0": "1", "0-1": "0", "1/2-1/2": "½", "+/-": "+", "-/+": "−", "-/-": "−", "*": "*" },
  black: { "1-0": "0", "0-1": "1", "1/2-1/2": "½", "+/-": "−", "-/+": "+", "-/-": "−", "*": "*" },
};

/** A pairing's result as the board shows it now (a game in progress is "*"). */
function pairingResult(pairing) {
  const game = pairing.game ? games.get(pairing.game) : null;
  if (game && game.status === "finished" && game.result !== "*") return game.result;
  return pairing.result || "*";
}

function drawCrosstable() {
  const order = (tournament.standings || []).map((s) => s.player);
  const rank = new Map(order.map((id, index) => [id, index + 1]));
  const isRoundRobin = tournament.format !== "swiss";
  const rows = [];
  let head;
  if (isRoundRobin) {
    // Player against player: every result between two players, round by round.
    head = el(
      "tr",
      {},
      el("th", { scope: "col" }, "#"),
      el("th", { scope: "col", class: "name" }, "Player"),
      ...order.map((_, i) => el("th", { scope: "col" }, i + 1)),
      el("th", { scope: "col" }, "Points"),
    );
    const cells = new Map(); // "a:b" -> scores of a against b
    for (const round of tournament.rounds || []) {
      for (const pairing of round.pairings) {
        if (pairing.black === null) continue;
        const result = pairingResult(pairing);
        if (result === "*" && !(pairing.game && games.get(pairing.game)?.status === "started")) continue;
        add(cells, `${pairing.white}:${pairing.black}`, SCORE.white[result] ?? "?");
        add(cells, `${pairing.black}:${pairing.white}`, SCORE.black[result] ?? "?");
      }
    }
    for (const id of order) {
      const standing = tournament.standings.find((s) => s.player === id);
      rows.push(
        el(
          "tr",
          { "data-player": id },
          el("td", {}, rank.get(id)),
          el("th", { scope: "row", class: "name" }, playerLabel(player(id))),
          ...order.map((other) =>
            other === id
              ? el("td", { class: "self", "aria-label": "same player" }, "")
              : el("td", {}, (cells.get(`${id}:${other}`) || []).join(" ")),
          ),
          el("td", { class: "points" }, formatPoints(standing ? standing.points : 0)),
        ),
      );
    }
  } else {
    // Swiss: round by round, the opponent's rank, the colour and the score.
    const rounds = tournament.rounds || [];
    head = el(
      "tr",
      {},
      el("th", { scope: "col" }, "#"),
      el("th", { scope: "col", class: "name" }, "Player"),
      ...rounds.map((r) => el("th", { scope: "col" }, `R${r.round}`)),
      el("th", { scope: "col" }, "Points"),
    );
    for (const id of order) {
      const standing = tournament.standings.find((s) => s.player === id);
      const cells = rounds.map((round) => {
        const pairing = round.pairings.find((p) => p.white === id || p.black === id);
        if (pairing) {
          const white = pairing.white === id;
          const opponent = white ? pairing.black : pairing.white;
          const score = SCORE[white ? "white" : "black"][pairingResult(pairing)] ?? "?";
          return el("td", {}, `${rank.get(opponent) ?? "?"}${white ? "w" : "b"} ${score}`);
        }
        const bye = (round.byes || []).find((b) => b.player === id);
        return el("td", {}, bye ? `bye ${formatPoints(bye.points)}` : "");
      });
      rows.push(
        el(
          "tr",
          { "data-player": id },
          el("td", {}, rank.get(id)),
          el("th", { scope: "row", class: "name" }, playerLabel(player(id))),
          ...cells,
          el("td", { class: "points" }, formatPoints(standing ? standing.points : 0)),
        ),
      );
    }
  }
  $("crosstable").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function add(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

addEventListener("hashchange", () => {
  selectedRound = roundFromHash();
  stale.rounds = stale.boards = true;
  draw();
});
setInterval(tickClocks, 250);
socket.connect();
