/// First-in first-out queue over an array (amortized O(1)). A popped element is released at
/// once (its slot is cleared), so queued operations do not keep payloads alive after commit.
struct FIFOQueue<Element> {
    private var storage: [Element?] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }
    var first: Element? { head < storage.count ? storage[head] : nil }

    mutating func reserveCapacity(_ n: Int) { storage.reserveCapacity(n) }
    mutating func append(_ e: Element) { storage.append(e) }

    mutating func removeFirst() -> Element {
        precondition(head < storage.count)
        let e = storage[head]!
        storage[head] = nil
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 4096 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return e
    }
}

/// Idempotency keys known to be durable, by 128-bit keyed fingerprint (pure logic; the store
/// guards it with the submission lock). Bounded by a time window and an entry count: keys are
/// forgotten in insertion order when their timestamp leaves the window, or early (counted)
/// when the count cap is reached.
struct IdempotencyIndex: Sendable {
    struct Location: Equatable, Sendable {
        var partition: UInt32
        var offset: UInt64
        var timestampMs: Int64
    }

    private var map = KeyTable()
    private var order = FIFOQueue<(KeyHash, Int64)>()
    let entriesMax: Int

    init(entriesMax: Int) {
        precondition(entriesMax >= 1)
        self.entriesMax = entriesMax
    }

    var count: Int { map.count }

    mutating func reserveCapacity(_ n: Int) {
        map.reserveCapacity(min(n, entriesMax + 1))
        order.reserveCapacity(min(n, entriesMax + 1))
    }

    func lookup(_ hash: KeyHash) -> Location? { map[hash] }

    /// Inserts (or replaces) a key; returns how many keys were forgotten early to respect the cap.
    @discardableResult
    mutating func insert(_ hash: KeyHash, _ location: Location) -> Int {
        map.set(hash, location)
        order.append((hash, location.timestampMs))
        var evicted = 0
        while map.count > entriesMax, !order.isEmpty {
            if removeOldest() { evicted += 1 }
        }
        return evicted
    }

    /// `insert` for many keys at once (faster for large loads); returns how many keys were
    /// forgotten early to respect the cap.
    @discardableResult
    mutating func insertAll(_ items: [(KeyHash, Location)]) -> Int {
        map.setAll(items)
        for (hash, location) in items { order.append((hash, location.timestampMs)) }
        var evicted = 0
        while map.count > entriesMax, !order.isEmpty {
            if removeOldest() { evicted += 1 }
        }
        return evicted
    }

    /// Forgets keys (in insertion order) whose timestamp is below `cutoffMs`; returns how many.
    @discardableResult
    mutating func expire(before cutoffMs: Int64) -> Int {
        var expired = 0
        while let (_, ts) = order.first, ts < cutoffMs {
            if removeOldest() { expired += 1 }
        }
        return expired
    }

    /// Pops the oldest queue entry; removes its key unless the key was re-inserted since.
    private mutating func removeOldest() -> Bool {
        let (hash, ts) = order.removeFirst()
        guard let current = map[hash], current.timestampMs == ts else { return false }
        map.remove(hash)
        return true
    }

    /// All entries, oldest first (for tests and diagnostics).
    var entries: [(KeyHash, Location)] {
        map.all.sorted { $0.1.timestampMs < $1.1.timestampMs }
    }
}
extension FIFOQueue: Sendable where Element: Sendable {}
