/**
 * Runs the chat: npm run chat (or PORT=8080 npx tsx examples/chat/server.ts), then open http://localhost:8080/ in two
 * browsers (examples/chat/README.md).
 */
import { createChat, ROOMS } from './app.js';

const port = Number(process.env.PORT ?? 8080);
// A fixed CHAT_SECRET keeps sessions across restarts; without it, pages sign in again by themselves.
const { relay, server } = await createChat(process.env.CHAT_SECRET ? { secret: process.env.CHAT_SECRET } : {});
server.listen(port, () => {
  console.log(`chat on http://localhost:${port}/ (rooms: ${ROOMS.join(', ')}; ?transport=eventsource|longpoll|websocket)`);
});

const shutdown = () => void relay.close().then(() => server.close(() => process.exit(0)));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
