/* global document, location, sessionStorage, fetch, EventSource, WebSocket, TextDecoder */
/**
 * The chat page: no build step, no library. `?room=` picks the room, `?transport=` how messages
 * arrive (eventsource, longpoll or websocket). Every transport names a message by the same id
 * (`time:tag`), kept in sessionStorage with the lines shown, so a reload (or a switch of transport)
 * resumes right after the last message this tab saw: nothing sent meanwhile is lost or repeated.
 *
 * A restart of the server is survived the same way: every transport reconnects from the last id,
 * with a growing pause while the server is away, and a session the new process does not know (its
 * cookie secret changed) is opened again with the nickname this tab used.
 */
const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const transport = params.get('transport') || 'eventsource';
const eventsPath = `/rooms/${encodeURIComponent(room)}/events`;
const storageKey = `push-relay-chat:${room}`;
const nickKey = 'push-relay-chat:nick';
const MAX_SHOWN = 200;

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

function saveState() {
  sessionStorage.setItem(storageKey, JSON.stringify(state));
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
  saveState();
}

/** One message from any transport: its id, its JSON body, and whether messages were lost before it. */
function receive(id, body, missed) {
  attempts = 0;
  if (missed) show({ notice: 'the server no longer has some messages sent before this one (they expired, or it restarted)' });
  let message;
  try {
    message = JSON.parse(body);
  } catch {
    message = { from: '?', text: body };
  }
  state.lastId = id;
  show({ id, from: message.from, text: message.text });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Consecutive failed connections; the pause before the next one grows with it (1 s to 30 s, spread). */
let attempts = 0;
function pause() {
  attempts++;
  const ms = Math.min(30_000, 1000 * 2 ** (attempts - 1));
  setStatus('reconnecting', `reconnecting in ${Math.round(ms / 1000)} s`);
  return sleep(ms * (0.5 + Math.random() / 2));
}

/**
 * After a refusal (403) or a connection that failed: true to reconnect after a pause, false to stop.
 * A 403 here means the session is gone (the server restarted with another secret): sign in again with
 * this tab's nickname. A server that does not answer yet is simply tried again.
 */
async function recover() {
  let me;
  try {
    me = await ensureSession();
  } catch {
    return true;
  }
  if (me) return true;
  setStatus('closed', 'signed out');
  showJoin();
  return false;
}

function subscribeEventSource() {
  const url = state.lastId ? `${eventsPath}?last_event_id=${encodeURIComponent(state.lastId)}` : eventsPath;
  const source = new EventSource(url);
  let missed = false;
  source.onopen = () => {
    attempts = 0;
    setStatus('live', 'live (EventSource)');
  };
  source.onerror = async () => {
    // CONNECTING: the browser reconnects by itself, sending the last id as Last-Event-ID.
    if (source.readyState !== EventSource.CLOSED) return setStatus('reconnecting');
    // CLOSED: an HTTP refusal (403), which a browser never retries by itself.
    source.close();
    if (await recover()) {
      await pause();
      subscribeEventSource();
    }
  };
  source.onmessage = (event) => {
    receive(event.lastEventId, event.data, missed);
    missed = false;
  };
  source.addEventListener('push-relay-missed', () => (missed = true));
  source.addEventListener('push-relay-end', (event) => {
    // Deleted, or replaced by a newer subscriber: final. A time-out, a restart (closing) or a store
    // outage (unavailable): the browser reconnects by itself, after the retry hint the server sent.
    if (event.data === 'deleted' || event.data === 'conflict') {
      source.close();
      setStatus('closed', `closed: ${event.data}`);
    } else setStatus('reconnecting', `reconnecting (${event.data})`);
  });
}

async function subscribeLongPoll() {
  for (;;) {
    // A long-poll is waiting from the moment it is sent (until its time-out, nothing comes back).
    setStatus('live', 'live (long-poll)');
    const headers = {};
    if (state.lastId) {
      // The protocol's cursor: Last-Modified and Etag of the last message, sent back.
      const [time, tag] = state.lastId.split(':');
      headers['If-Modified-Since'] = new Date(Number(time) * 1000).toUTCString();
      headers['If-None-Match'] = tag;
    }
    let res;
    try {
      res = await fetch(eventsPath, { headers, cache: 'no-store' });
    } catch {
      await pause();
      continue;
    }
    if (res.status === 200) {
      const time = Date.parse(res.headers.get('Last-Modified')) / 1000;
      receive(`${time}:${res.headers.get('Etag')}`, await res.text(), res.headers.has('X-Push-Relay-Missed'));
    } else if (res.status === 304) {
      // The subscriber time-out passed with nothing new: ask again.
      attempts = 0;
    } else if (res.status === 410 || res.status === 409) {
      setStatus('closed', `closed: ${res.status} ${(await res.text()).trim()}`);
      return;
    } else if (res.status === 403) {
      if (!(await recover())) return;
      await pause();
    } else {
      // 503: the server is closing, or its store is away.
      await pause();
    }
  }
}

function subscribeWebSocket() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = state.lastId ? `?last_event_id=${encodeURIComponent(state.lastId)}` : '';
  // The metadata subprotocol puts the message id (and content type) at the head of every frame.
  const socket = new WebSocket(`${scheme}://${location.host}${eventsPath}${query}`, 'ws+meta.push-relay');
  socket.binaryType = 'arraybuffer';
  let opened = false;
  socket.onopen = () => {
    opened = true;
    attempts = 0;
    setStatus('live', 'live (WebSocket)');
  };
  socket.onmessage = (event) => {
    const frame = typeof event.data === 'string' ? event.data : new TextDecoder().decode(event.data);
    const blank = frame.indexOf('\n\n');
    const fields = {};
    for (const line of frame.slice(0, blank).split('\n')) {
      const colon = line.indexOf(': ');
      fields[line.slice(0, colon)] = line.slice(colon + 2);
    }
    receive(fields.id, frame.slice(blank + 2), fields.missed === '1');
  };
  socket.onclose = async (event) => {
    // 4410 channel deleted, 4409 replaced by a newer subscriber: final.
    if (event.code === 4410 || event.code === 4409) {
      setStatus('closed', `closed: ${event.reason}`);
      return;
    }
    // A time-out: at once. A handshake that failed (a browser does not say why: a 403, or no server) or
    // any other close: after a pause, signed in again if the session is gone.
    if (event.code === 4408) return subscribeWebSocket();
    if (!opened && !(await recover())) return;
    await pause();
    subscribeWebSocket();
  };
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
  for (const r of rooms) links.push([`#${r}`, `?room=${r}&transport=${transport}`]);
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
  setStatus('connecting');
  if (transport === 'websocket') subscribeWebSocket();
  else if (transport === 'longpoll') void subscribeLongPoll();
  else subscribeEventSource();
}

$('room').textContent = room;
for (const line of state.shown) render(line);
const me = await ensureSession().catch(() => undefined);
if (me) start(me);
else showJoin();
