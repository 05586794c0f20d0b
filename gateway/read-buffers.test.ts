import { BUSY_READ_BYTES, IDLE_READ_BYTES, ReadBufferPool } from './read-buffers';

describe('ReadBufferPool', () => {
  test('a buffer comes back for the next read once its read is handled and nothing else holds it', () => {
    const pool = new ReadBufferPool();
    const a = pool.take(BUSY_READ_BYTES);
    expect(a.length).toBe(BUSY_READ_BYTES);
    pool.release(a);
    expect(pool.take(BUSY_READ_BYTES).buffer).toBe(a.buffer);
  });

  test('a body piece on its way to the client keeps its buffer from the next read until the write is done', () => {
    const pool = new ReadBufferPool();
    const a = pool.take(BUSY_READ_BYTES);
    const done1 = pool.retain(a.subarray(100, 200));
    const done2 = pool.retain(a.subarray(300, 400));
    pool.release(a); // the read is handled; two writes still hold it
    const b = pool.take(BUSY_READ_BYTES);
    expect(b.buffer).not.toBe(a.buffer);
    done1();
    done1(); // a second call changes nothing
    const c = pool.take(BUSY_READ_BYTES);
    expect(c.buffer).not.toBe(a.buffer);
    done2();
    expect(pool.take(BUSY_READ_BYTES).buffer).toBe(a.buffer);
  });

  test('memory that is not the pool needs nothing, and the two sizes do not mix', () => {
    const pool = new ReadBufferPool();
    const other = Buffer.alloc(10);
    pool.retain(other)();
    pool.release(other);
    const idle = pool.take(IDLE_READ_BYTES);
    expect(idle.length).toBe(IDLE_READ_BYTES);
    pool.release(idle);
    expect(pool.take(BUSY_READ_BYTES).buffer).not.toBe(idle.buffer);
    expect(pool.take(IDLE_READ_BYTES).buffer).toBe(idle.buffer);
  });
});
