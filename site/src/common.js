// What every page shares: the live socket with resume, the game state folded from events,
// clock and score formatting, and small DOM helpers. Everything is rendered with
// textContent and DOM nodes, never HTML strings, so names from the server stay text.

/** Make an element: el("div", {class: "x", "aria-label": "y"}, child, "text", ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The id at the end of the page's path (/games/AbC12345 -> AbC12345). */
export function idFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] || "");
}

/** Remaining time as shown on a clock: h:mm:ss, m:ss, and tenths under ten seconds. */
export function formatClock(ms) {
  if (ms === null || ms === undefined) return "-";
  const clamped = Math.max(0, ms);
  const total = Math.floor(clamped / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor(total / 60) % 60;
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  if (h > 0) return `${h}:${String(m).padStart(2, "0")}:${ss}`;
  if (clamped < 10000) return `${m}:${ss}.${Math.floor((clamped % 1000) / 100)}`;
  return `${m}:${ss}`;
}

/** "+0.31", "-1.20", "#3", "#-3" for a White-view score {cp} or {mate}. */
export function formatScore(score) {
  if (!score) return "";
  if ("mate" in score) return score.mate === 0 ? "checkmate" : `#${score.mate}`;
  const pawns = score.cp / 100;
  return `${pawns >= 0 ? "+" : ""}${pawns.toFixed(2)}`;
}

/** White's share of the evaluation bar, 0..1 (a mate is a full bar; centipawns are squashed).
 * A checkmate on the board (`mate` 0) is White's when its `winner` says so. */
export function whiteShare(score) {
  if (!score) return 0.5;
  if ("mate" in score) {
    if (score.mate === 0) return score.winner === "white" ? 1 : score.winner === "black" ? 0 : 0.5;
    return score.mate > 0 ? 1 : 0;
  }
  const squashed = 2 / (1 + Math.exp(-score.cp / 300)) - 1;
  return Math.min(1, Math.max(0, 0.5 + squashed / 2));
}

const TERMINATIONS = {
  checkmate: "checkmate",
  resignation: "resignation",
  timeout: "time",
  stalemate: "stalemate",
  insufficient_material: "insufficient material",
  threefold_repetition: "threefold repetition",
  fivefold_repetition: "fivefold repetition",
  fifty_moves: "fifty-move rule",
  seventyfive_moves: "seventy-five-move rule",
  agreement: "agreement",
  arbiter: "arbiter's decision",
  forfeit: "forfeit",
};

/** "1-0 · checkmate" for a finished game, "" otherwise. */
export function formatResult(game) {
  if (game.status !== "finished" && (!game.result || game.result === "*")) return "";
  const why = TERMINATIONS[game.termination] || game.termination || "";
  return why ? `${game.result} · ${why}` : game.result;
}

export function playerLabel(player) {
  if (!player) return "?";
  return [player.title, player.name].filter(Boolean).join(" ");
}

/** Remaining time of each side now, the running side's clock advanced locally. */
export function clocksNow(game, receivedAt, now) {
  const clock = game.clock || {};
  const elapsed = game.status === "started" && clock.running ? now - receivedAt : 0;
  return {
    white: clock.white_ms === undefined ? null : clock.white_ms - (clock.running === "white" ? elapsed : 0),
    black: clock.black_ms === undefined ? null : clock.black_ms - (clock.running === "black" ? elapsed : 0),
    running: game.status === "started" ? clock.running || null : null,
  };
}

/**
 * Fold one event into a game (a Game JSON from a snapshot). Returns false when the event
 * cannot be applied in order (a gap in seq): the caller should resync from a snapshot.
 * Events at or below the game's seq are ignored (returns true).
 */
export function applyEvent(game, msg) {
  if (typeof msg.seq !== "number") return true;
  if (msg.seq <= game.seq) return true;
  if (msg.seq !== game.seq + 1) return false;
  game.seq = msg.seq;
  if (msg.clock) {
    game.clock = msg.clock;
    game.clockAt = performance.now();
  }
  switch (msg.type) {
    case "start":
      game.status = "started";
      break;
    case "move":
      game.moves = game.moves || [];
      game.moves.push({ uci: msg.uci, san: msg.san, clock_ms: msg.clock_ms ?? moverClock(msg) });
      game.fen = msg.fen;
      game.ply = msg.ply;
      game.draw_offer = null;
      break;
    case "eval":
      if (msg.ply === game.ply) game.eval = msg;
      break;
    case "end":
      game.status = "finished";
      game.result = msg.result;
      game.termination = msg.termination;
      if (game.clock) game.clock = { ...game.clock, running: null };
      break;
    case "takeback":
      game.moves = (game.moves || []).slice(0, msg.ply);
      game.fen = msg.fen;
      game.ply = msg.ply;
      game.eval = null;
      game.status = "started";
      game.result = "*";
      game.termination = null;
      break;
    case "draw_offer":
      game.draw_offer = msg;
      break;
    default:
      break;
  }
  return true;
}

function moverClock(msg) {
  // The mover is the side not to move after the move.
  if (!msg.clock || !msg.fen) return undefined;
  const turn = msg.fen.split(" ")[1];
  return turn === "w" ? msg.clock.black_ms : msg.clock.white_ms;
}

/** The ply number of the game's initial position (0 unless a custom FEN set it). */
export function startPly(game) {
  const fen = game.initial_fen || "";
  const parts = fen.split(" ");
  if (parts.length < 6) return 0;
  const full = parseInt(parts[5], 10) || 1;
  return (full - 1) * 2 + (parts[1] === "b" ? 1 : 0);
}

/**
 * A WebSocket that reconnects by itself with growing pauses, asking the server to resume
 * from where it stopped (``query()`` gives the ``since=`` part). ``onState`` is told
 * "connecting", "live", "reconnecting" (with the seconds until the next try) or "offline".
 */
export class LiveSocket {
  constructor(path, { query, onMessage, onState }) {
    this.path = path;
    this.query = query;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.retryMs = 500;
    this.timer = null;
    this.pinger = null;
    this.connectedOnce = false;
    addEventListener("online", () => this.reconnectNow());
    addEventListener("offline", () => this.onState("offline"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.ws) this.reconnectNow();
    });
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const q = this.query();
    const url = `${scheme}://${location.host}${this.path}${q ? `?${q}` : ""}`;
    this.onState(this.connectedOnce ? "reconnecting" : "connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.connectedOnce = true;
      this.onState("live");
      clearInterval(this.pinger);
      this.pinger = setInterval(() => ws.readyState === 1 && ws.send("ping"), 20000);
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      this.schedule();
    };
  }

  /** Drop the connection and come back at once (after a gap in seq, for instance). */
  resync() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.connect();
  }

  reconnectNow() {
    if (this.ws && this.ws.readyState <= 1) return;
    this.retryMs = 500;
    this.connect();
  }

  schedule() {
    const wait = this.retryMs * (0.75 + Math.random() / 2);
    this.retryMs = Math.min(this.retryMs * 2, 15000);
    this.onState(navigator.onLine === false ? "offline" : "reconnecting", Math.ceil(wait / 1000));
    this.timer = setTimeout(() => this.connect(), wait);
  }
}

/** Show the connection state in ``node`` (a .conn element). */
export function showConnection(node, state, seconds) {
  node.dataset.state = state;
  const text = {
    connecting: "connecting…",
    live: "live",
    reconnecting: seconds ? `reconnecting in ${seconds} s…` : "reconnecting…",
    offline: "offline: waiting for the network",
  }[state];
  node.textContent = text || state;
}

/** Call ``fn`` at most once per animation frame however often ``request`` is called. */
export function frameThrottle(fn) {
  let pending = false;
  return function request() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}

/** "15 min", "90 s": a broadcast delay. */
export function formatDelay(seconds) {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** "90+30" from a clock in seconds. */
export function formatTimeControl(clock) {
  if (!clock) return "";
  const base = clock.initial % 60 === 0 ? `${clock.initial / 60}′` : `${clock.initial}s`;
  return `${base} + ${clock.increment}″`;
}

/** The squares of a UCI move, for chessground ("e2e4" -> ["e2", "e4"]). */
export function uciSquares(uci) {
  if (!uci || uci.length < 4) return undefined;
  return [uci.slice(0, 2), uci.slice(2, 4)];
}

/** Whose move it is in a FEN ("white" | "black"). */
export function turnOf(fen) {
  return (fen || "").split(" ")[1] === "b" ? "black" : "white";
}

/** GET JSON, null on any failure (the pages keep what they have). */
export async function getJson(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    return await response.json();
  } catch {
    return null;
  }
}
