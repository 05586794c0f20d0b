/**
 * Spool slots whose gateway connection closed while the gateway still held them
 * (RESPONSE_SPOOL pieces it had not freed). A write of that gateway's may still be
 * reading them, so they stay taken until the gateway process has exited: its mappings
 * of the spool are gone then, and the slots are freed. Until then the bridge copies
 * instead once a thread has no free slot. A gateway that cannot be watched (peer-process.ts
 * says when) keeps them for the life of the bridge, as they were kept before.
 */
import type { PeerProcess } from './peer-process';

export interface RetiredSlotsOptions {
  /** How often gateways that still hold retired slots are asked whether they have exited. */
  checkEveryMs: number;
  /** Slots left taken at a connection's close (isapi_bridge_spool_slots_retired_total). */
  onRetired?: (count: number) => void;
  /** Retired slots freed because their gateway had exited (isapi_bridge_spool_slots_reclaimed_total). */
  onReclaimed?: (count: number) => void;
}

interface Retired {
  readonly peer: PeerProcess;
  readonly frees: ReadonlyArray<() => void>;
}

export class RetiredSlots {
  private readonly waiting: Retired[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RetiredSlotsOptions) {}

  /**
   * A connection closed holding the slots that `frees` free. They are freed once `peer`
   * (the gateway on that connection) has exited, at once if it already has; never without
   * a peer. The peer is closed when done with, also when there is nothing to free.
   */
  retire(frees: ReadonlyArray<() => void>, peer: PeerProcess | undefined): void {
    if (frees.length === 0) {
      peer?.close();
      return;
    }
    this.opts.onRetired?.(frees.length);
    if (!peer) return;
    const retired = { peer, frees };
    if (peer.exited()) return this.reclaim(retired);
    this.waiting.push(retired);
    // A killed gateway's socket closes before the kernel marks it exited: the first check may come too early.
    this.timer ??= setInterval(() => this.check(), this.opts.checkEveryMs).unref();
  }

  /** Retired slots still waiting for their gateway to exit. */
  get waitingSlots(): number {
    return this.waiting.reduce((n, r) => n + r.frees.length, 0);
  }

  /** Stops watching (the bridge is stopping): waiting slots stay taken. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const r of this.waiting.splice(0)) r.peer.close();
  }

  private check(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const retired = this.waiting[i]!;
      if (!retired.peer.exited()) continue;
      this.waiting.splice(i, 1);
      this.reclaim(retired);
    }
    if (this.waiting.length === 0) this.close();
  }

  private reclaim(retired: Retired): void {
    retired.peer.close();
    for (const free of retired.frees) free();
    this.opts.onReclaimed?.(retired.frees.length);
  }
}
