@main struct TLSBench { static func main() {} }
