import Hub
import TestSupport
import XCTest

/// Configuration resolution as a pure function: sources, precedence, validation.
final class ConfigurationTests: XCTestCase {
    func testDefaultsMatchTheDesign() throws {
        let c = try HubConfiguration.resolve(flags: [("insecure-plaintext", "true")], environment: [:], configFileText: nil)
        XCTAssertEqual(c.listen, HostPort("127.0.0.1", 8443))
        XCTAssertEqual(c.adminListen, HostPort("127.0.0.1", 9090))
        XCTAssertEqual(c.dataDir, "./data")
        XCTAssertEqual(c.region, "local")
        XCTAssertEqual(c.hubISPB, "99999010")
        XCTAssertEqual(c.redisURL, "redis://127.0.0.1:6379")
        XCTAssertEqual(c.longPollSeconds, 5)
        XCTAssertEqual(c.streamIdleSeconds, 30)
        XCTAssertEqual(c.slotsPerISPB, 6)
    }

    func testFlagsBeatEnvironmentBeatFile() throws {
        let file = "region = from-file\nslots-per-ispb = 3\nlong-poll-seconds = 7\ninsecure-plaintext\n"
        let c = try HubConfiguration.resolve(
            flags: [("region", "from-flag")],
            environment: ["RTPSTREAM_REGION": "from-env", "RTPSTREAM_SLOTS_PER_ISPB": "4", "PATH": "/bin"],
            configFileText: file)
        XCTAssertEqual(c.region, "from-flag")
        XCTAssertEqual(c.slotsPerISPB, 4)
        XCTAssertEqual(c.longPollSeconds, 7)
        XCTAssertTrue(c.insecurePlaintext)
    }

    func testRepeatableSchemaFromEachSource() throws {
        let c = try HubConfiguration.resolve(flags: [("insecure-plaintext", "true")],
                                             environment: ["RTPSTREAM_SCHEMA": "a.xsd,b.xsd"], configFileText: "schema = c.xsd")
        XCTAssertEqual(c.schemas, ["a.xsd", "b.xsd"])
        let f = try HubConfiguration.resolve(flags: [("insecure-plaintext", "true"), ("schema", "x.xsd"), ("schema", "y.xsd")],
                                             environment: [:], configFileText: "schema = c.xsd")
        XCTAssertEqual(f.schemas, ["x.xsd", "y.xsd"])
    }

    func testErrorsNameTheOption() {
        func message(_ flags: [(String, String)], env: [String: String] = [:], file: String? = nil) -> String {
            do {
                _ = try HubConfiguration.resolve(flags: flags, environment: env, configFileText: file)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message([("insecure-plaintext", "1"), ("listen", "1.2.3.4")]).contains("--listen"))
        XCTAssertTrue(message([("insecure-plaintext", "1"), ("region", "Bad Region")]).contains("--region"))
        XCTAssertTrue(message([("insecure-plaintext", "1"), ("redis", "http://x")]).contains("--redis"))
        XCTAssertTrue(message([("insecure-plaintext", "1")], file: "bogus = 1").contains("unknown option 'bogus'"))
        XCTAssertTrue(message([("insecure-plaintext", "1")], file: "???").contains("config:1"))
        XCTAssertTrue(message([("insecure-plaintext", "1"), ("listen", "127.0.0.1:1"), ("admin-listen", "127.0.0.1:1")])
            .contains("--admin-listen: must differ"))
        XCTAssertTrue(message([]).contains("--tls-cert: required"))
    }

    func testRedisURLParsing() throws {
        let e = try RedisEndpoint(url: "redis://:secret@10.0.0.5:6380/2")
        XCTAssertEqual(e.host, "10.0.0.5")
        XCTAssertEqual(e.port, 6380)
        XCTAssertEqual(e.database, 2)
        XCTAssertEqual(e.password, "secret")
        let d = try RedisEndpoint(url: "redis://127.0.0.1")
        XCTAssertEqual(d.port, 6379)
    }

    func testEveryOptionHasAnEnvironmentName() {
        for o in HubConfiguration.options {
            XCTAssertTrue(o.environmentName.hasPrefix("RTPSTREAM_"))
            XCTAssertFalse(o.environmentName.contains("-"))
        }
    }
}

/// The option table drives the environment and the config file; `rtpstream serve`'s flags are
/// declared apart (swift-argument-parser). Every option must also be a flag.
final class ServeFlagsTests: XCTestCase {
    func testEveryOptionIsAServeFlag() throws {
        let (status, help) = try runCommand(Paths.executable("rtpstream").path, ["serve", "--help"])
        XCTAssertEqual(status, 0, help)
        for o in HubConfiguration.options {
            XCTAssertTrue(help.contains("--\(o.name)"), "--\(o.name) is in the option table but not a flag of rtpstream serve")
        }
    }
}
