/* global document, location, sessionStorage, fetch */
/**
 * The chat page, on push-relay/client (served by the app as /push-relay-client.js; in your own app,
 * `import { subscribe } from 'push-relay/client'` through your bundler). `?room=` picks the room,
 * `?transport=` pins how messages arrive (eventsource, longpoll or websocket; default: WebSocket, with
 * EventSource then long-poll as fallbacks). The client names every message by the same id whatever
 * the transport; the page keeps it in sessionStorage with the lines shown, so a reload resumes right
 * after the last message this tab saw.
 *
 * The client reconnects by itself (a restart, a network cut) with growing pauses. What it cannot do
 * is sign in: when the server no longer knows the session (a restarted process has a new cookie
 * secret), the page opens it again with the nickname this tab used.
 */
import { subscribe } from '/push-relay-client.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const transport = params.get('transport');
const TRANSPORTS = { eventsource: ['eventsource'], longpoll: ['long-poll'], websocket: ['websocket'] };
const eventsPath = `/rooms/${encodeURIComponent(room)}/events`;
const storageKey = `push-relay-chat:${room}`;
const nickKey = 'push-relay-chat:nick';
const MAX_SHOWN = 200;
const LABELS = { websocket: 'WebSocket', eventsource: 'EventSource', 'long-poll': 'long-poll' };

const $ = (id) => document.getElementById(id);
const state = loadState();

function loadState() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(storageKey) || 'null');
    if (saved && Array.isArray(saved.shown)) return saved;
  } catch {
    // A corrupt entry: start afresh.
  }
  return { lastId: null, shown: [] };
}

function setStatus(status, text) {
  const el = $('status');
  el.dataset.status = status;
  el.textContent = text || status;
}

function render(line) {
  const li = document.createElement('li');
  if (line.notice) {
    li.className = 'notice';
    li.textContent = line.notice;
  } else {
    li.dataset.id = line.id;
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = line.from;
    li.append(from, document.createTextNode(line.text));
  }
  $('messages').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function show(line) {
  render(line);
  state.shown.push(line);
  if (state.shown.length > MAX_SHOWN) state.shown.splice(0, state.shown.length - MAX_SHOWN);
  sessionStorage.setItem(storageKey, JSON.stringify(state));
}

function listen() {
  const sub = subscribe(eventsPath, { transports: TRANSPORTS[transport], lastId: state.lastId ?? undefined });
  sub.on('message', (data, { id }) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      message = { from: '?', text: String(data) };
    }
    state.lastId = id;
    show({ id, from: message.from, text: message.text });
  });
  sub.on('missed', () => show({ notice: 'the server no longer has some messages sent before this one (they expired, or it restarted)' }));
  sub.on('status', ({ state: s, transport: t }) => {
    if (s === 'open') setStatus('live', `live (${LABELS[t]})`);
    else if (s === 'reconnecting' || s === 'connecting') setStatus(s);
  });
  // A connection failed (the client retries it). A WebSocket refused for a lost session looks just
  // like a network failure: make sure the session is there for the next attempt.
  sub.on('error', () => void ensureSession().catch(() => {}));
  sub.on('end', async ({ reason, detail }) => {
    // 403: the server no longer knows the session. Deleted or taken over: final.
    if (reason === 'forbidden' && (await ensureSession().catch(() => undefined))) return listen();
    if (reason === 'forbidden') {
      setStatus('closed', 'signed out');
      return showJoin();
    }
    setStatus('closed', `closed: ${reason}${detail ? ` (${detail})` : ''}`);
  });
}

async function send(text) {
  const res = await fetch(`/rooms/${encodeURIComponent(room)}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: text,
  });
  if (!res.ok) show({ notice: `not sent: ${res.status} ${(await res.text()).trim()}` });
}

async function session() {
  const res = await fetch('/session', { cache: 'no-store' });
  return res.ok ? res.json() : undefined;
}

async function signIn(nick) {
  const res = await fetch('/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ nick }),
  });
  if (!res.ok) return { error: (await res.json()).error };
  sessionStorage.setItem(nickKey, nick);
  return res.json();
}

/** The session, opened again with this tab's nickname when the server no longer knows it. Throws while the server is away. */
async function ensureSession() {
  const me = await session();
  if (me) return me;
  const nick = sessionStorage.getItem(nickKey);
  if (!nick) return undefined;
  const again = await signIn(nick);
  return again.error ? undefined : again;
}

function nav(rooms) {
  const links = [];
  for (const r of rooms) links.push([`#${r}`, `?room=${r}${transport ? `&transport=${transport}` : ''}`]);
  for (const t of ['eventsource', 'longpoll', 'websocket']) links.push([t, `?room=${room}&transport=${t}`]);
  $('nav').replaceChildren(
    ...links.map(([label, href]) => {
      const a = document.createElement('a');
      a.textContent = label;
      a.href = href;
      return a;
    }),
  );
}

function showJoin() {
  $('send').hidden = true;
  $('join').hidden = false;
  $('join').onsubmit = async (event) => {
    event.preventDefault();
    const me = await signIn($('nick').value.trim());
    if (me.error) show({ notice: me.error });
    else start(me);
  };
}

function start(me) {
  nav(me.rooms);
  $('join').hidden = true;
  if (!me.rooms.includes(room)) {
    // The server would refuse it (403) on every attempt: say so once.
    setStatus('closed', `there is no room "${room}": pick one above`);
    return;
  }
  $('send').hidden = false;
  $('send').onsubmit = (event) => {
    event.preventDefault();
    const input = $('text');
    const text = input.value.trim();
    input.value = '';
    if (text) void send(text);
  };
  listen();
}

$('room').textContent = room;
for (const line of state.shown) render(line);
const me = await ensureSession().catch(() => undefined);
if (me) start(me);
else showJoin();
