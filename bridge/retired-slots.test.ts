import type { PeerProcess } from './peer-process';
import { RetiredSlots } from './retired-slots';

/** A gateway process as RetiredSlots sees it: `gone` says whether it has exited. */
function gateway(gone = false): PeerProcess & { gone: boolean; closed: number } {
  const peer = {
    gone,
    closed: 0,
    exited: () => {
      if (peer.closed) throw new Error('asked after close');
      return peer.gone;
    },
    close: () => {
      peer.closed++;
    },
  };
  return peer;
}

function setup(): { slots: RetiredSlots; retired: number[]; reclaimed: number[]; freed: number[]; frees: (...ids: number[]) => Array<() => void> } {
  const retired: number[] = [];
  const reclaimed: number[] = [];
  const freed: number[] = [];
  const slots = new RetiredSlots({ checkEveryMs: 20, onRetired: (n) => retired.push(n), onReclaimed: (n) => reclaimed.push(n) });
  return { slots, retired, reclaimed, freed, frees: (...ids) => ids.map((id) => () => freed.push(id)) };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('RetiredSlots', () => {
  test('slots of a gateway that has already exited are freed at once', () => {
    const { slots, retired, reclaimed, freed, frees } = setup();
    const peer = gateway(true);
    slots.retire(frees(1, 2, 3), peer);
    expect(retired).toEqual([3]);
    expect(reclaimed).toEqual([3]);
    expect(freed).toEqual([1, 2, 3]);
    expect(peer.closed).toBe(1);
    expect(slots.waitingSlots).toBe(0);
  });

  test('slots of a living gateway stay taken until it exits, then are freed once', async () => {
    const { slots, retired, reclaimed, freed, frees } = setup();
    const peer = gateway();
    slots.retire(frees(1, 2), peer);
    expect(retired).toEqual([2]);
    await tick(70);
    expect(freed).toEqual([]);
    expect(slots.waitingSlots).toBe(2);
    peer.gone = true;
    await tick(70);
    expect(freed).toEqual([1, 2]);
    expect(reclaimed).toEqual([2]);
    expect(peer.closed).toBe(1);
    expect(slots.waitingSlots).toBe(0);
    await tick(70);
    expect(freed).toEqual([1, 2]); // nothing twice, and the watch has stopped (exited() after close would throw)
  });

  test('each gateway is watched on its own', async () => {
    const { slots, freed, frees } = setup();
    const a = gateway();
    const b = gateway();
    slots.retire(frees(1), a);
    slots.retire(frees(2, 3), b);
    b.gone = true;
    await tick(70);
    expect(freed).toEqual([2, 3]);
    expect(slots.waitingSlots).toBe(1);
    expect(a.closed).toBe(0);
    a.gone = true;
    await tick(70);
    expect(freed).toEqual([2, 3, 1]);
  });

  test('without a peer to watch, slots are counted and never freed', async () => {
    const { slots, retired, reclaimed, freed, frees } = setup();
    slots.retire(frees(1), undefined);
    await tick(50);
    expect(retired).toEqual([1]);
    expect(reclaimed).toEqual([]);
    expect(freed).toEqual([]);
    expect(slots.waitingSlots).toBe(0);
  });

  test('a connection that held nothing closes its peer and counts nothing', () => {
    const { slots, retired, frees } = setup();
    const peer = gateway();
    slots.retire(frees(), peer);
    expect(peer.closed).toBe(1);
    expect(retired).toEqual([]);
  });

  test('close() lets go of every watched gateway and frees nothing', async () => {
    const { slots, freed, frees } = setup();
    const peer = gateway();
    slots.retire(frees(1), peer);
    slots.close();
    expect(peer.closed).toBe(1);
    peer.gone = true;
    await tick(50);
    expect(freed).toEqual([]);
  });
});
