/**
 * Framing, the sticky-packet fix: whatever way the byte stream is cut into reads, the decoders give
 * back exactly the messages that were sent, copy nothing when a message lies within one read, and
 * refuse an oversize message before buffering it.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameError, frameHeader, LengthPrefixedDecoder, LineDecoder } from '../lib/stream/framing';

/** `stream` cut at `cuts` (positions, any order, duplicates allowed). */
function cut(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of [...points, stream.length]) {
    pieces.push(stream.subarray(start, point));
    start = point;
  }
  return pieces;
}

function encodeFrames(bodies: Uint8Array[]): Buffer {
  return Buffer.concat(bodies.flatMap((body) => [frameHeader(body.length), Buffer.from(body)]));
}

/** Every piece as a fresh copy: a decoder must not rely on a read's memory after push() returns. */
function feed(push: (data: Buffer) => void, pieces: Buffer[]): void {
  for (const piece of pieces) {
    const read = Buffer.from(piece);
    push(read);
    read.fill(0xee); // The next read overwrites the shared buffer.
  }
}

describe('framing: length-prefixed (u32 big-endian)', () => {
  it('gives back every frame, whatever the cut points, with many frames per read (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (bodies, cuts) => {
        const stream = encodeFrames(bodies);
        const got: Buffer[] = [];
        const decoder = new LengthPrefixedDecoder((frame) => got.push(Buffer.from(frame)), { maxFrameSize: 300 });
        feed((d) => decoder.push(d), cut(stream, cuts));
        assert.deepEqual(got.map((g) => g.toString('hex')), bodies.map((b) => Buffer.from(b).toString('hex')));
        assert.equal(decoder.buffered, 0);
      },
    ), { numRuns: 300 });
  });

  it('gives back every frame when the stream is cut at every single byte boundary', () => {
    const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('sticky packets'), Buffer.alloc(70000, 7)];
    const stream = encodeFrames(bodies);
    for (const step of [1, 2, 3, 5, 4096]) {
      const got: Buffer[] = [];
      const decoder = new LengthPrefixedDecoder((frame) => got.push(Buffer.from(frame)), { maxFrameSize: 1 << 20 });
      const pieces: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) pieces.push(stream.subarray(i, i + step));
      feed((d) => decoder.push(d), pieces);
      assert.deepEqual(got, bodies, `cut every ${step} bytes`);
    }
  });

  it('hands out a view of the read, not a copy, when a frame lies within one read', () => {
    const read = encodeFrames([Buffer.from('one'), Buffer.from('two')]);
    const views: Buffer[] = [];
    new LengthPrefixedDecoder((frame) => views.push(frame), { maxFrameSize: 16 }).push(read);
    assert.equal(views.length, 2);
    for (const view of views) assert.equal(view.buffer, read.buffer, 'the frame shares the read buffer');
    assert.deepEqual(views.map(String), ['one', 'two']);
  });

  it('refuses a frame over the limit from its header alone, before buffering a byte of it', () => {
    const decoder = new LengthPrefixedDecoder(() => assert.fail('no frame expected'), { maxFrameSize: 1024 });
    const header = frameHeader(1025);
    decoder.push(header.subarray(0, 2));
    assert.throws(() => decoder.push(header.subarray(2)), (err: FrameError) => err.code === 'ERR_FRAME_TOO_LARGE');
    assert.equal(decoder.buffered, 0);
    // An absurd size (4 GiB - 1) is the same error, not an allocation.
    const absurd = new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 1 << 20 });
    assert.throws(() => absurd.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])), FrameError);
    assert.equal(absurd.buffered, 0);
  });

  it('a frame of exactly the limit passes; the frames before an oversize one are delivered', () => {
    const got: number[] = [];
    const decoder = new LengthPrefixedDecoder((frame) => got.push(frame.length), { maxFrameSize: 8 });
    const stream = Buffer.concat([encodeFrames([Buffer.alloc(8), Buffer.alloc(3)]), frameHeader(9), Buffer.alloc(9)]);
    assert.throws(() => decoder.push(stream), FrameError);
    assert.deepEqual(got, [8, 3]);
    decoder.push(encodeFrames([Buffer.alloc(1)])); // Stopped: nothing more is delivered.
    assert.deepEqual(got, [8, 3]);
  });

  it('checks its limit and the header length', () => {
    assert.throws(() => new LengthPrefixedDecoder(() => undefined, { maxFrameSize: -1 }), RangeError);
    assert.throws(() => new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 1.5 }), RangeError);
    assert.throws(() => frameHeader(2 ** 32), RangeError);
    assert.deepEqual([...frameHeader(0x01020304)], [1, 2, 3, 4]);
  });
});

describe('framing: a counted body after a frame (passThrough)', () => {
  /** A frame whose body is the length of the unframed bytes that follow it (as a decimal string). */
  function encodeWithBodies(messages: { frame: Uint8Array; raw: Uint8Array }[]): Buffer {
    return Buffer.concat(messages.flatMap(({ frame, raw }) => {
      const announce = Buffer.concat([Buffer.from(`${raw.length}:`), Buffer.from(frame)]);
      return [frameHeader(announce.length), announce, Buffer.from(raw)];
    }));
  }

  it('gives back every frame and every body, whatever the cut points (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ frame: fc.uint8Array({ maxLength: 40 }), raw: fc.uint8Array({ maxLength: 500 }) }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (messages, cuts) => {
        const got: { frame: string; raw: Buffer[] }[] = [];
        const decoder: LengthPrefixedDecoder = new LengthPrefixedDecoder((frame) => {
          const colon = frame.indexOf(0x3a);
          const length = Number(frame.subarray(0, colon).toString());
          const entry = { frame: frame.subarray(colon + 1).toString('hex'), raw: [] as Buffer[] };
          got.push(entry);
          decoder.passThrough(length, (bytes) => entry.raw.push(Buffer.from(bytes)));
        }, { maxFrameSize: 64 });
        feed((d) => decoder.push(d), cut(encodeWithBodies(messages), cuts));
        assert.deepEqual(got.map((g) => [g.frame, Buffer.concat(g.raw).toString('hex')]),
          messages.map((m) => [Buffer.from(m.frame).toString('hex'), Buffer.from(m.raw).toString('hex')]));
        assert.equal(decoder.buffered, 0);
        assert.equal(decoder.passingThrough, 0);
      },
    ), { numRuns: 300 });
  });

  it('a body far larger than the frame limit is handed out as views of the reads, never buffered', () => {
    const views: Buffer[] = [];
    const frames: string[] = [];
    const decoder: LengthPrefixedDecoder = new LengthPrefixedDecoder((frame) => {
      frames.push(frame.toString());
      if (frame.toString() === 'file') decoder.passThrough(1 << 20, (bytes) => views.push(bytes));
    }, { maxFrameSize: 16 });
    const read = Buffer.concat([frameHeader(4), Buffer.from('file'), Buffer.alloc(300_000, 1)]);
    decoder.push(read);
    assert.equal(views.length, 1);
    assert.equal(views[0].buffer, read.buffer, 'the body shares the read buffer');
    assert.equal(views[0].length, 300_000);
    assert.equal(decoder.buffered, 0);
    assert.equal(decoder.passingThrough, (1 << 20) - 300_000);
    // The rest of the body and the next frame in one read: framing resumes right after the body.
    decoder.push(Buffer.concat([Buffer.alloc((1 << 20) - 300_000, 2), frameHeader(2), Buffer.from('ok')]));
    assert.equal(decoder.passingThrough, 0);
    assert.equal(views.reduce((sum, v) => sum + v.length, 0), 1 << 20);
    assert.deepEqual(frames, ['file', 'ok']);
  });

  it('refuses to start a body in the middle of a frame, and a bad length', () => {
    const decoder = new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 16 });
    decoder.push(frameHeader(3).subarray(0, 2));
    assert.throws(() => decoder.passThrough(10, () => undefined), /between frames/);
    assert.throws(() => new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 16 }).passThrough(-1, () => undefined), RangeError);
    assert.throws(() => new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 16 }).passThrough(0.5, () => undefined), RangeError);
  });

  it('stop() ends a body too: nothing more is delivered', () => {
    let delivered = 0;
    const decoder = new LengthPrefixedDecoder(() => undefined, { maxFrameSize: 16 });
    decoder.passThrough(100, (bytes) => {
      delivered += bytes.length;
      decoder.stop();
    });
    decoder.push(Buffer.alloc(10));
    decoder.push(Buffer.alloc(10));
    assert.equal(delivered, 10);
    assert.equal(decoder.passingThrough, 0);
  });
});

describe('framing: lines', () => {
  const line = fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes.map((b) => (b === 0x0a ? 0x20 : b))));

  it('gives back every line, whatever the cut points (property)', () => {
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 }), (lines, cuts) => {
      const stream = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
      const got: Buffer[] = [];
      const decoder = new LineDecoder((l) => got.push(Buffer.from(l)), { maxLineLength: 80 });
      feed((d) => decoder.push(d), cut(stream, cuts));
      assert.deepEqual(got, lines);
      assert.equal(decoder.buffered, 0);
    }), { numRuns: 300 });
  });

  it('drops CR before LF when asked (CRLF protocols), also when CR and LF arrive in different reads', () => {
    const got: string[] = [];
    const decoder = new LineDecoder((l) => got.push(l.toString()), { maxLineLength: 4, dropCarriageReturn: true });
    feed((d) => decoder.push(d), [Buffer.from('USER\r'), Buffer.from('\nPASS\r\nNO'), Buffer.from('OP\r\n')]);
    assert.deepEqual(got, ['USER', 'PASS', 'NOOP']);
  });

  it('hands out views of the read when a line lies within it', () => {
    const read = Buffer.from('abc\ndef\n');
    const views: Buffer[] = [];
    new LineDecoder((l) => views.push(l), { maxLineLength: 10 }).push(read);
    for (const view of views) assert.equal(view.buffer, read.buffer);
    assert.deepEqual(views.map(String), ['abc', 'def']);
  });

  it('refuses a line over the limit as soon as it is known to be too long, holding at most the limit', () => {
    const decoder = new LineDecoder(() => assert.fail('no line expected'), { maxLineLength: 100 });
    decoder.push(Buffer.alloc(60, 0x61));
    assert.throws(() => decoder.push(Buffer.alloc(60, 0x61)), (err: FrameError) => err.code === 'ERR_LINE_TOO_LONG');
    assert.equal(decoder.buffered, 0);
    // A complete line over the limit within one read is refused too.
    const whole = new LineDecoder(() => assert.fail('no line expected'), { maxLineLength: 3 });
    assert.throws(() => whole.push(Buffer.from('abcd\n')), FrameError);
  });

  it('onOversize: an oversize line is told once and skipped, never buffered past the limit, whatever the cuts (property)', () => {
    const anyLine = fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes.map((b) => (b === 0x0a ? 0x20 : b))));
    fc.assert(fc.property(fc.array(anyLine, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), fc.boolean(), (lines, cuts, crlf) => {
      const max = 50;
      const ending = crlf ? '\r\n' : '\n';
      const stream = Buffer.concat(lines.flatMap((l) => [l, Buffer.from(ending)]));
      const events: string[] = [];
      let peak = 0;
      const decoder = new LineDecoder((l) => events.push(`line ${l.toString('hex')}`), {
        maxLineLength: max, dropCarriageReturn: crlf, onOversize: () => events.push('oversize'),
      });
      for (const piece of cut(stream, cuts)) {
        decoder.push(Buffer.from(piece));
        peak = Math.max(peak, decoder.buffered);
      }
      // The CR of each CRLF is dropped; a CR of the line's own stays.
      const expected = lines.map((l) => (l.length > max ? 'oversize' : `line ${l.toString('hex')}`));
      assert.deepEqual(events, expected);
      assert.ok(peak <= max + 1, `held ${peak} bytes`);
      assert.equal(decoder.buffered, 0);
    }), { numRuns: 300 });
  });

  it('onOversize: 10 MiB without a delimiter holds nothing; the line after it is delivered', () => {
    const got: string[] = [];
    let oversize = 0;
    const decoder = new LineDecoder((l) => got.push(l.toString()), { maxLineLength: 4096, dropCarriageReturn: true, onOversize: () => oversize++ });
    decoder.push(Buffer.from('NOOP\r\n'));
    const junk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 160; i++) {
      decoder.push(junk);
      assert.ok(decoder.buffered <= 4097);
    }
    decoder.push(Buffer.from('AAAA\r\nPWD\r\n'));
    assert.equal(oversize, 1, 'told once for the one long line');
    assert.deepEqual(got, ['NOOP', 'PWD']);
  });

  it('a line of exactly the limit passes, in one read or split', () => {
    const got: number[] = [];
    const decoder = new LineDecoder((l) => got.push(l.length), { maxLineLength: 5 });
    decoder.push(Buffer.from('12345\n123'));
    decoder.push(Buffer.from('45\n'));
    assert.deepEqual(got, [5, 5]);
  });
});

describe('framing: LineDecoder with counted bodies (passThrough) and a protocol switch (takeRest)', () => {
  /** HTTP/1.1's shape: a header line "N name" announcing N unframed bytes after it. */
  function encode(messages: { name: string; body: Uint8Array }[]): Buffer {
    return Buffer.concat(messages.flatMap(({ name, body }) => [Buffer.from(`${body.length} ${name}\r\n`), Buffer.from(body)]));
  }

  it('gives back every line and every body, whatever the cut points (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{0,20}$/), body: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (messages, cuts) => {
        const got: { name: string; body: Buffer[] }[] = [];
        const decoder: LineDecoder = new LineDecoder((line) => {
          const text = line.toString();
          const space = text.indexOf(' ');
          const entry = { name: text.slice(space + 1), body: [] as Buffer[] };
          got.push(entry);
          decoder.passThrough(Number(text.slice(0, space)), (bytes) => entry.body.push(Buffer.from(bytes)));
        }, { maxLineLength: 64, dropCarriageReturn: true });
        feed((d) => decoder.push(d), cut(encode(messages), cuts));
        assert.deepEqual(got.map((g) => [g.name, Buffer.concat(g.body).toString('hex')]),
          messages.map((m) => [m.name, Buffer.from(m.body).toString('hex')]));
        assert.equal(decoder.buffered, 0);
        assert.equal(decoder.passingThrough, 0);
      },
    ), { numRuns: 300 });
  });

  it('a body of any size is handed out as views of the reads (no copy), even if it looks like lines; passThrough mid-line is refused', () => {
    const views: Buffer[] = [];
    const lines: string[] = [];
    const decoder: LineDecoder = new LineDecoder((line) => {
      lines.push(line.toString());
      if (line.toString() === 'body') decoder.passThrough(1 << 20, (bytes) => views.push(bytes));
    }, { maxLineLength: 16 });
    const read = Buffer.concat([Buffer.from('body\n'), Buffer.alloc(300_000, 0x0a)]);
    decoder.push(read);
    assert.equal(views.length, 1);
    assert.equal(views[0].buffer, read.buffer, 'a view of the read, not a copy');
    assert.equal(decoder.passingThrough, (1 << 20) - 300_000);
    decoder.push(Buffer.concat([Buffer.alloc((1 << 20) - 300_000, 0x0a), Buffer.from('after\n')]));
    assert.deepEqual(lines, ['body', 'after']);
    decoder.push(Buffer.from('unfinished'));
    assert.throws(() => decoder.passThrough(1, () => undefined), /between lines/);
    assert.throws(() => new LineDecoder(() => undefined, { maxLineLength: 4 }).passThrough(-1, () => undefined), RangeError);
  });

  it('takeRest(): from onLine, the rest of that read (a copy) and nothing more is decoded; between pushes, the unfinished line', () => {
    let rest: Buffer | null = null;
    const lines: string[] = [];
    const decoder: LineDecoder = new LineDecoder((line) => {
      lines.push(line.toString());
      if (line.toString() === 'UPGRADE') rest = decoder.takeRest();
    }, { maxLineLength: 64 });
    const read = Buffer.from('HELLO\nUPGRADE\n\x00binary\nnot a line\n');
    decoder.push(read);
    assert.deepEqual(lines, ['HELLO', 'UPGRADE']);
    assert.equal(rest!.toString('latin1'), '\x00binary\nnot a line\n');
    read.fill(0);
    assert.equal(rest!.toString('latin1'), '\x00binary\nnot a line\n', 'a copy: the read buffer may be reused');
    decoder.push(Buffer.from('more\n'));
    assert.deepEqual(lines, ['HELLO', 'UPGRADE'], 'stopped');

    const between = new LineDecoder(() => undefined, { maxLineLength: 64 });
    between.push(Buffer.from('partial li'));
    assert.equal(between.takeRest().toString(), 'partial li');
  });
});
