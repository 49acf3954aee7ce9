/// Layout of a store directory (docs/storage.md):
///
///     LOCK                             flock'd by the process that has the store open
///     CHECKPOINT                       last completed checkpoint
///     journal/<seq 20 digits>.wal      write-ahead journal files; journal/spare.wal for reuse
///     keys/<seq 20 digits>.keys        idempotency keys persisted by the checkpoint of <seq>
///     partitions/<region>:<ispb>/      <base 20 digits>.log + .idx segments
///     quarantine/                      the quarantine log, same segment format
struct StorePaths: Sendable {
    static let quarantineName = "quarantine"

    let root: String

    var checkpoint: String { "\(root)/CHECKPOINT" }
    /// Held with an exclusive flock while a store is open: one process per directory.
    var lock: String { "\(root)/LOCK" }
    var journalDirectory: String { "\(root)/journal" }
    var keysDirectory: String { "\(root)/keys" }
    var partitionsDirectory: String { "\(root)/partitions" }
    var spareJournal: String { "\(journalDirectory)/spare.wal" }

    func journal(_ seq: UInt64) -> String { "\(journalDirectory)/\(JournalFormat.fileName(seq))" }
    func keys(_ seq: UInt64) -> String { "\(keysDirectory)/\(zeroPadded(seq)).keys" }

    /// Directory of a partition by name ("<region>:<ispb>" or "quarantine").
    func partitionDirectory(_ name: String) -> String {
        name == Self.quarantineName ? "\(root)/quarantine" : "\(partitionsDirectory)/\(name)"
    }

    /// "/a/b" → "/a"; "b" → "."
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    /// The directory whose entry for the partition directory must be fsynced after creating it.
    func parentOfPartition(_ name: String) -> String {
        name == Self.quarantineName ? root : partitionsDirectory
    }
}
