/* global document, location, sessionStorage, fetch, EventSource, WebSocket, TextDecoder */
/**
 * The chat page: no build step, no library. `?room=` picks the room, `?transport=` how messages
 * arrive (eventsource, longpoll or websocket). Every transport names a message by the same id
 * (`time:tag`), kept in sessionStorage with the lines shown, so a reload (or a switch of transport)
 * resumes right after the last message this tab saw: nothing sent meanwhile is lost or repeated.
 */
const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const transport = params.get('transport') || 'eventsource';
const eventsPath = `/rooms/${encodeURIComponent(room)}/events`;
const storageKey = `push-relay-chat:${room}`;
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
  if (missed) show({ notice: 'some messages expired before this page could get them' });
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

function subscribeEventSource() {
  const url = state.lastId ? `${eventsPath}?last_event_id=${encodeURIComponent(state.lastId)}` : eventsPath;
  const source = new EventSource(url);
  let missed = false;
  source.onopen = () => setStatus('live', 'live (EventSource)');
  // The browser reconnects by itself after an error, sending the last id as Last-Event-ID.
  source.onerror = () => setStatus('reconnecting');
  source.onmessage = (event) => {
    receive(event.lastEventId, event.data, missed);
    missed = false;
  };
  source.addEventListener('push-relay-missed', () => (missed = true));
  source.addEventListener('push-relay-end', (event) => {
    // A time-out ends the stream so that it reconnects; anything else is final.
    if (event.data === 'timeout') return;
    source.close();
    setStatus('closed', `closed: ${event.data}`);
  });
}

async function subscribeLongPoll() {
  setStatus('live', 'live (long-poll)');
  for (;;) {
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
      setStatus('reconnecting');
      await sleep(1000);
      continue;
    }
    if (res.status === 200) {
      const time = Date.parse(res.headers.get('Last-Modified')) / 1000;
      receive(`${time}:${res.headers.get('Etag')}`, await res.text(), res.headers.has('X-Push-Relay-Missed'));
      setStatus('live', 'live (long-poll)');
    } else if (res.status === 304) {
      // The subscriber time-out passed with nothing new: ask again.
    } else if (res.status === 410 || res.status === 403 || res.status === 409) {
      setStatus('closed', `closed: ${res.status} ${(await res.text()).trim()}`);
      return;
    } else {
      setStatus('reconnecting', `reconnecting (${res.status})`);
      await sleep(1000);
    }
  }
}

function subscribeWebSocket() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = state.lastId ? `?last_event_id=${encodeURIComponent(state.lastId)}` : '';
  // The metadata subprotocol puts the message id (and content type) at the head of every frame.
  const socket = new WebSocket(`${scheme}://${location.host}${eventsPath}${query}`, 'ws+meta.push-relay');
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => setStatus('live', 'live (WebSocket)');
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
  socket.onclose = (event) => {
    // 4410 channel deleted, 4409 replaced by a newer subscriber: final. Anything else: reconnect from the last id.
    if (event.code === 4410 || event.code === 4409) {
      setStatus('closed', `closed: ${event.reason}`);
      return;
    }
    setStatus('reconnecting');
    setTimeout(subscribeWebSocket, event.code === 4408 ? 0 : 1000);
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

function start(me) {
  nav(me.rooms);
  $('join').hidden = true;
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
const me = await session();
if (me) start(me);
else {
  $('join').hidden = false;
  $('join').onsubmit = async (event) => {
    event.preventDefault();
    const res = await fetch('/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ nick: $('nick').value }),
    });
    if (res.ok) start(await res.json());
    else show({ notice: (await res.json()).error });
  };
}
