// The entry point shared by the fuzz harnesses.
//
// Built with -DFUZZING and -sanitize=fuzzer: hands control to libFuzzer's driver (SwiftPM
// renames an executable's entry point, so libFuzzer's own main() is not used). Otherwise: a
// replay tool that runs the harness over the files and directories named on the command line,
// which is how the test command exercises each seed corpus.
import Foundation

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
#endif

public enum FuzzDriver {
    /// `testOneInput` is the harness's `LLVMFuzzerTestOneInput` (libFuzzer also needs the symbol);
    /// `run` is the harness itself, for replay.
    public static func main(testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32,
                            run: (UnsafeRawBufferPointer) -> Void) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
        #else
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                print("no such file: \(path)")
                exit(2)
            }
            let files = isDir.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                data.withUnsafeBytes { run($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
        exit(0)
        #endif
    }
}
