/**
 * A read-only window on a Map: it sees every later change of the map but offers no way to make
 * one (no set/delete/clear, and the map itself is out of reach in a private field). A selector
 * hands this out as `keys`, since deleting an entry behind its back would desynchronise it from
 * the kernel.
 */
export class ReadonlyMapView<K, V> implements ReadonlyMap<K, V> {
  readonly #map: ReadonlyMap<K, V>;

  constructor(map: ReadonlyMap<K, V>) {
    this.#map = map;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  /** As Map's, except that the third argument is this view, never the map behind it. */
  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.#map) callback.call(thisArg, value, key, this);
  }

  get [Symbol.toStringTag](): string {
    return 'ReadonlyMapView';
  }
}
