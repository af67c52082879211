/**
 * A crowd of raw long-poll clients in a child process, so that the test server and its clients do
 * not share one file-descriptor limit. argv: port, path, count. Prints "parked <n>" once every request
 * is written; on "destroy" from stdin destroys every socket and prints "destroyed".
 */
import net from 'node:net';

const [port, path, count] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const sockets = [];
const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
const BATCH = 250; // keeps the server's accept backlog from overflowing

function connectOne() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.write(request);
      resolve(socket);
    });
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      process.stderr.write(`unexpected answer to a parked request: ${chunk.toString('latin1').split('\r\n')[0]}\n`);
    });
  });
}

for (let made = 0; made < count; made += BATCH) {
  const batch = await Promise.all(Array.from({ length: Math.min(BATCH, count - made) }, connectOne));
  sockets.push(...batch);
}
process.stdout.write(`parked ${sockets.length}\n`);

process.stdin.on('data', (data) => {
  if (!data.toString().includes('destroy')) return;
  for (const socket of sockets) socket.destroy();
  process.stdout.write('destroyed\n');
  process.exit(0);
});
