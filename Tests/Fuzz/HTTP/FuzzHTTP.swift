@main struct FuzzHTTP { static func main() {} }
