import Glibc

/// Hands each thread its own `Validator` for one configuration (registry, directory, hub),
/// created on the thread's first call and released when the thread exits. Meant for the
/// server's worker threads: create one per configuration at startup and keep it for the life
/// of the process (dropping it leaks the validators of threads that are still alive).
public final class ThreadLocalValidators: Sendable {
    public let registry: SchemaRegistry
    public let directory: ParticipantDirectory
    public let hubISPB: String
    private let key: pthread_key_t

    public init(registry: SchemaRegistry, directory: ParticipantDirectory, hubISPB: String = "99999010") {
        precondition(ParticipantDirectory.isISPB(hubISPB), "hubISPB must be 8 digits")
        self.registry = registry
        self.directory = directory
        self.hubISPB = hubISPB
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { value in
            if let value { Unmanaged<Validator>.fromOpaque(value).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        self.key = key
    }

    deinit { pthread_key_delete(key) }

    /// This thread's validator.
    public func current() -> Validator {
        if let value = pthread_getspecific(key) {
            return Unmanaged<Validator>.fromOpaque(value).takeUnretainedValue()
        }
        let validator = Validator(registry: registry, directory: directory, hubISPB: hubISPB)
        let rc = pthread_setspecific(key, Unmanaged.passRetained(validator).toOpaque())
        precondition(rc == 0, "pthread_setspecific failed: \(rc)")
        return validator
    }
}
