/**
 * The requests one session is running: at most its pipeline depth, a handful. A plain array
 * beats a Set here: the Set was added to and deleted from on every call, and V8 rehashed it as
 * it grew and shrank (about 3% of the JS thread's samples at 64 in flight).
 */
export class Running<T> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    this.items.push(item);
  }

  delete(item: T): boolean {
    // The first slot by hand: with a pipeline of two it is nearly always there, and the call into
    // Array#indexOf cost more than the search (2.5% of the JS thread at 64 in flight).
    const at = this.items[0] === item ? 0 : this.items.indexOf(item);
    if (at < 0) return false;
    const last = this.items.pop() as T;
    if (at < this.items.length) this.items[at] = last; // order does not matter
    return true;
  }

  /** A snapshot: the caller may delete while it iterates. */
  [Symbol.iterator](): Iterator<T> {
    return this.items.slice()[Symbol.iterator]();
  }
}
