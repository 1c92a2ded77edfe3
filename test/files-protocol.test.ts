/**
 * The file-transfer protocol's codec: every message survives encode/decode, the worked example of
 * docs/file-transfer.md is byte-exact, and every malformed body is refused with a ProtocolError that
 * says what is wrong — never a crash, never a guess.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  checkName, decode, encode, ErrorCode, MAX_MESSAGE_SIZE, Message, MessageType, nameProblem, ProtocolError,
} from '../lib/files/protocol';
import { frameHeader } from '../lib/stream/framing';

const sha = (text: string) => createHash('sha256').update(text).digest();

function refused(body: Buffer, code: string, message: RegExp): void {
  assert.throws(() => decode(body), (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

/** A PUT body with each field given raw, to build malformed ones. */
function rawPut(size: Buffer, hash: Buffer, name: Buffer): Buffer {
  const nameLength = Buffer.alloc(2);
  nameLength.writeUInt16BE(name.length);
  return Buffer.concat([Buffer.from([MessageType.PUT]), size, Buffer.from([hash.length]), hash, nameLength, name]);
}

const u64 = (value: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(value);
  return b;
};

describe('files protocol: the codec', () => {
  it('every message survives encode then decode (property)', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._ -]{1,40}$/).filter((n) => nameProblem(n) === null);
    const size = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
    const mtime = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const message: fc.Arbitrary<Message> = fc.oneof(
      fc.record({ type: fc.constant('put' as const), name, size, sha256: hash }),
      fc.tuple(name, size, size, mtime, hash).map(([n, a, b, m, h]) => ({
        type: 'get' as const, name: n, have: Math.min(a, b), size: Math.max(a, b), mtimeNs: m, sha256: h,
      })),
      fc.record({ type: fc.constant('accept' as const), offset: size }),
      fc.record({ type: fc.constant('stored' as const), size, sha256: hash }),
      fc.tuple(size, size, mtime, hash).map(([a, b, m, h]) => ({
        type: 'sending' as const, offset: Math.min(a, b), size: Math.max(a, b), mtimeNs: m, sha256: h,
      })),
      fc.record({
        type: fc.constant('error' as const),
        code: fc.constantFrom(...(Object.keys(ErrorCode) as (keyof typeof ErrorCode)[])),
        message: fc.string({ maxLength: 200 }).filter((s) => Buffer.byteLength(s) <= 1024 && !/[\ud800-\udfff]/.test(s)),
      }),
    );
    fc.assert(fc.property(message.map((m) => ({ ...m }) as Message), (m) => {
      const body = encode(m);
      assert.ok(body.length <= MAX_MESSAGE_SIZE);
      assert.deepEqual(decode(body), m);
    }), { numRuns: 500 });
  });

  it('GET without a partial carries no hash', () => {
    const body = encode({ type: 'get', name: 'a', have: 0, size: 0, mtimeNs: 0n, sha256: null });
    assert.deepEqual(decode(body), { type: 'get', name: 'a', have: 0, size: 0, mtimeNs: 0n, sha256: null });
    assert.equal(body.length, 1 + 8 + 8 + 8 + 1 + 2 + 1);
  });

  it('the worked example of docs/file-transfer.md, byte for byte', () => {
    const hash = sha('hello\n');
    assert.equal(hash.toString('hex'), '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
    const frame = (m: Message) => {
      const body = encode(m);
      return Buffer.concat([frameHeader(body.length), body]).toString('hex');
    };
    const hex = (text: string) => text.replace(/\s+/g, '');
    assert.equal(frame({ type: 'put', name: 'hello.txt', size: 6, sha256: hash }), hex(`
      00000035 01 0000000000000006 20 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 0009 68656c6c6f2e747874`));
    assert.equal(frame({ type: 'accept', offset: 0 }), hex('00000009 81 0000000000000000'));
    assert.equal(frame({ type: 'stored', size: 6, sha256: hash }), hex(`
      0000002a 82 0000000000000006 20 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03`));
    assert.equal(frame({ type: 'accept', offset: 2 }), hex('00000009 81 0000000000000002'));
    assert.equal(frame({ type: 'get', name: 'hello.txt', have: 2, size: 6, mtimeNs: 1764500000123456789n, sha256: hash }), hex(`
      00000045 02 0000000000000002 0000000000000006 187cc366c1890d15 20 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
      0009 68656c6c6f2e747874`));
    assert.equal(frame({ type: 'sending', offset: 2, size: 6, mtimeNs: 1764500000123456789n, sha256: hash }), hex(`
      0000003a 83 0000000000000002 0000000000000006 187cc366c1890d15 20 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03`));
    assert.equal(frame({ type: 'error', code: 'BUSY', message: 'busy' }), hex('00000008 ff 05 0004 62757379'));
  });

  it('refuses an empty frame and an unknown message type', () => {
    refused(Buffer.alloc(0), 'BAD_MESSAGE', /empty frame/);
    refused(Buffer.from([0x42, 1, 2, 3]), 'BAD_MESSAGE', /unknown message type 0x42/);
    refused(Buffer.from([0x00]), 'BAD_MESSAGE', /unknown message type 0x00/);
  });

  it('refuses a field cut short, and bytes after the last field', () => {
    const good = encode({ type: 'put', name: 'x', size: 3, sha256: sha('abc') });
    for (let cut = 1; cut < good.length; cut++) refused(good.subarray(0, cut), 'BAD_MESSAGE', /PUT: the frame ends inside/);
    refused(Buffer.concat([good, Buffer.from([0])]), 'BAD_MESSAGE', /1 unexpected bytes after the last field/);
  });

  it('refuses a negative size (as a signed 64-bit number) and an absurd one', () => {
    refused(rawPut(u64((1n << 64n) - 1n), sha('a'), Buffer.from('x')), 'BAD_MESSAGE', /size is negative \(-1 as a signed 64-bit number\)/);
    refused(rawPut(u64(1n << 63n), sha('a'), Buffer.from('x')), 'BAD_MESSAGE', /size is negative/);
    refused(rawPut(u64(1n << 60n), sha('a'), Buffer.from('x')), 'BAD_MESSAGE', /size 1152921504606846976 is absurd/);
    assert.equal((decode(rawPut(u64(BigInt(Number.MAX_SAFE_INTEGER)), sha('a'), Buffer.from('x'))) as { size: number }).size,
      Number.MAX_SAFE_INTEGER);
  });

  it('refuses a hash that is not 32 bytes', () => {
    refused(rawPut(u64(1n), Buffer.alloc(31), Buffer.from('x')), 'BAD_MESSAGE', /sha256 is 31 bytes; a SHA-256 is 32/);
    refused(rawPut(u64(1n), Buffer.alloc(0), Buffer.from('x')), 'BAD_MESSAGE', /sha256 is 0 bytes/);
    refused(rawPut(u64(1n), Buffer.alloc(255), Buffer.from('x')), 'BAD_MESSAGE', /sha256 is 255 bytes/);
  });

  it('refuses a GET that claims bytes but not their source, or more than the source had', () => {
    const get = (have: number, size: number, hash: Buffer | null) => Buffer.concat([
      Buffer.from([MessageType.GET]), u64(BigInt(have)), u64(BigInt(size)), u64(0n), Buffer.from([hash?.length ?? 0]), hash ?? Buffer.alloc(0),
      Buffer.from([0, 1]), Buffer.from('x'),
    ]);
    refused(get(5, 10, null), 'BAD_MESSAGE', /must say which source/);
    refused(get(11, 10, sha('a')), 'BAD_MESSAGE', /have \(11\) is more than size \(10\)/);
  });

  it('refuses a client\'s unknown error code and invalid UTF-8 in a message', () => {
    refused(Buffer.from([MessageType.ERROR, 99, 0, 0]), 'BAD_MESSAGE', /unknown error code 99/);
    refused(Buffer.from([MessageType.ERROR, 1, 0, 2, 0xc3, 0x28]), 'BAD_MESSAGE', /message is not valid UTF-8/);
  });

  it('refuses each unsafe name with BAD_NAME and says why', () => {
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from('..'), /".." is not a file name/],
      [Buffer.from('.'), /"." is not a file name/],
      [Buffer.from('/etc/passwd'), /path separator/],
      [Buffer.from('../../etc/passwd'), /path separator/],
      [Buffer.from('dir/file'), /path separator/],
      [Buffer.from('..\\windows'), /path separator/],
      [Buffer.from('a\0b'), /NUL/],
      [Buffer.from('line\nbreak'), /control character/],
      [Buffer.from(''), /empty/],
      [Buffer.alloc(256, 0x61), /256 bytes/],
      [Buffer.from([0x61, 0xff, 0x62]), /not valid UTF-8/],
    ];
    for (const [name, message] of cases) refused(rawPut(u64(1n), sha('a'), name), 'BAD_NAME', message);
    // 255 bytes, and UTF-8 beyond ASCII, are fine.
    assert.equal((decode(rawPut(u64(1n), sha('a'), Buffer.alloc(255, 0x61))) as { name: string }).name.length, 255);
    assert.equal(checkName('résumé 文件.txt'), 'résumé 文件.txt');
    assert.equal(nameProblem('.hidden'), null);
    assert.match(nameProblem('\ud800') ?? '', /lone surrogate/);
  });

  it('encode refuses what decode would refuse, before anything is sent', () => {
    assert.throws(() => encode({ type: 'put', name: '../x', size: 1, sha256: sha('a') }), ProtocolError);
    assert.throws(() => encode({ type: 'put', name: 'x', size: -1, sha256: sha('a') }), RangeError);
    assert.throws(() => encode({ type: 'put', name: 'x', size: 2 ** 53, sha256: sha('a') }), RangeError);
    assert.throws(() => encode({ type: 'put', name: 'x', size: 1, sha256: Buffer.alloc(31) }), RangeError);
    assert.throws(() => encode({ type: 'accept', offset: 1.5 }), RangeError);
  });
});
