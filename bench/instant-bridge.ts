/**
 * A stand-in bridge for one bench note ("gateway+instant"): it speaks the real wire
 * protocol (bridge/wire.ts) on a Unix socket and answers every REQUEST at once, on
 * its main thread, with what the hello sample sends: RESPONSE_HEAD, RESPONSE_BODY,
 * RESPONSE_END with hello's accounting. No extension, no threads.
 *
 *   node dist/bench/instant-bridge.js --socket PATH
 *
 * The real gateway runs in front of it (`--bridge unix:PATH`), so the row shows what
 * the gateway costs per request, and the isapi row minus this one what the bridge costs.
 */
import fs from 'node:fs';
import net from 'node:net';
import { emptyAccounting } from '../metrics/accounting';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  encodeFrameHeader,
  encodeHello,
  encodeResponseEnd,
  encodeResponseHead,
} from '../bridge/wire';
import { HSE_STATUS } from '../bridge/abi/constants';

const HELLO_BODY = Buffer.from('Hello from ISAPI!\n', 'latin1');

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing --${name}`);
  return process.argv[i + 1]!;
}

/** hello's response as frames: the head it sends with SEND_RESPONSE_HEADER_EX, one WriteClient, the end. */
function helloFrames(streamId: number): Buffer[] {
  const accounting = emptyAccounting();
  accounting.syncWrites = 1;
  accounting.syncWriteBytes = HELLO_BODY.length;
  accounting.ssfCalls.SEND_RESPONSE_HEADER_EX = { ok: 1, error: 0, unsupported: 0 };
  return [
    encodeResponseHead(streamId, {
      statusCode: 200,
      reason: 'OK',
      headers: [
        ['Content-Type', 'text/plain'],
        ['Content-Length', String(HELLO_BODY.length)],
      ],
      flags: 0,
    }),
    encodeFrameHeader(FrameType.RESPONSE_BODY, streamId, HELLO_BODY.length),
    HELLO_BODY,
    encodeResponseEnd(streamId, { hseStatus: HSE_STATUS.SUCCESS, loggedStatus: 200, logData: '', accounting, flags: 0 }),
  ];
}

const socketPath = arg('socket');
fs.rmSync(socketPath, { force: true });
net
  .createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) =>
      decoder.push(chunk, (frame) => {
        if (frame.type === FrameType.HELLO) {
          socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'bridge', credential: '' }));
        } else if (frame.type === FrameType.REQUEST) {
          socket.write(Buffer.concat(helloFrames(frame.streamId)));
        }
      }),
    );
  })
  .listen(socketPath, () => process.stdout.write(`listening ${socketPath}\n`));
process.on('SIGTERM', () => process.exit(0));
