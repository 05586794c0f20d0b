/**
 * Undoes chunked framing an extension wrote itself (it sent
 * `Transfer-Encoding: chunked` and its own size lines, as some ISAPI apps and
 * the Tomcat connector do). Node then frames the body again for this client, or
 * not at all for an HTTP/1.0 one, so the client sees each byte exactly once.
 */
export class ChunkedFramingError extends Error {
  readonly code = 'ERR_EXTENSION_CHUNKED_FRAMING';
}

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';

export class ChunkedDecoder {
  private state: State = 'size';
  private line = '';
  private remaining = 0;

  get complete(): boolean {
    return this.state === 'done';
  }

  /** Returns the payload bytes contained in `input` (possibly none). */
  push(input: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length && this.state !== 'done') {
      switch (this.state) {
        case 'size':
        case 'trailer':
        case 'data-crlf': {
          const nl = input.indexOf(0x0a, i);
          const end = nl < 0 ? input.length : nl;
          this.line += input.toString('latin1', i, end);
          if (this.line.length > 4096) throw new ChunkedFramingError('chunk size line longer than 4096 bytes');
          i = end;
          if (nl < 0) break;
          i++;
          const line = this.line.replace(/\r$/, '');
          this.line = '';
          if (this.state === 'data-crlf') {
            if (line !== '') throw new ChunkedFramingError('missing CRLF after chunk data');
            this.state = 'size';
          } else if (this.state === 'trailer') {
            if (line === '') this.state = 'done';
          } else {
            const size = parseInt(line.split(';', 1)[0]!.trim(), 16);
            if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+$/.test(line.split(';', 1)[0]!.trim())) {
              throw new ChunkedFramingError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
            }
            if (size === 0) this.state = 'trailer';
            else {
              this.remaining = size;
              this.state = 'data';
            }
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, input.length - i);
          out.push(input.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'data-crlf';
          break;
        }
      }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
