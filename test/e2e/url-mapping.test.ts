/**
 * URL requests of ServerSupportFunction: the Unicode mappings and NORMALIZE_URL.
 */
import path from 'node:path';
import { RunningGateway, bridgePath, request, sample, startGateway, writeConfig } from '../harness';

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway(['--config', writeConfig({ apps: [{ name: 'connstate', mount: '/scripts/connstate.dll', library: sample('connstate') }] })]);
});

afterAll(async () => {
  await gw?.stop();
});

async function ask(query: string): Promise<string> {
  return (await request(`${gw.url}/scripts/connstate.dll?${query}`)).body.toString();
}

test('HSE_REQ_MAP_UNICODE_URL_TO_PATH maps like MAP_URL_TO_PATH, in UTF-16 with byte sizes', async () => {
  const text = await ask('mode=mapunicode&url=/scripts/x.txt');
  const expected = bridgePath(path.join(path.dirname(sample('connstate')), 'x.txt'));
  expect(text).toContain(`path=${expected}\n`);
  // The size returned counts the bytes of the UTF-16 path and its NUL.
  expect(text).toContain(`ret=1 err=0 size=${(expected.length + 1) * 2}\n`);
});

test('HSE_REQ_MAP_UNICODE_URL_TO_PATH_EX fills HSE_UNICODE_URL_MAPEX_INFO', async () => {
  const text = await ask('mode=mapunicodeex&url=/scripts/x.txt');
  expect(text).toContain(`path=${bridgePath(path.join(path.dirname(sample('connstate')), 'x.txt'))}\n`);
  expect(text).toContain('flags=0x205\ncchMatchingURL=8\n');
});

test.each([
  ['/a/./b/../c', '/a/c'],
  ['/scripts/%41bc.dll', '/scripts/Abc.dll'],
  ['//x\\y/', '/x/y/'],
  ['/a/b/..?q=../1', '/a?q=../1'],
])('HSE_REQ_NORMALIZE_URL %j -> %j', async (input, output) => {
  expect(await ask(`mode=normalize&url=${encodeURIComponent(input)}`)).toBe(`ret=1 err=0\nurl=${output}\n`);
});

test('HSE_REQ_NORMALIZE_URL refuses a URL that climbs above the root', async () => {
  expect(await ask(`mode=normalize&url=${encodeURIComponent('/a/../../etc/passwd')}`)).toBe('ret=0 err=87\nurl=\n');
});

test('HSE_REQ_EXEC_UNICODE_URL runs the child like EXEC_URL', async () => {
  const gw2 = await startGateway([
    '--config',
    writeConfig({
      apps: [
        { name: 'connstate', mount: '/scripts/connstate.dll', library: sample('connstate') },
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      ],
    }),
  ]);
  try {
    const r = await request(`${gw2.url}/scripts/connstate.dll?mode=execurl&unicode=1&url=/scripts/hello.dll`);
    expect(r.body.toString()).toBe('Hello from ISAPI!\n');
    const line = await gw2.waitForAccess((l) => l.app === 'connstate');
    expect(line.logData).toBe('exec status=200 sub=0 err=0');
  } finally {
    await gw2.stop();
  }
});
