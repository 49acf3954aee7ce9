// TLS module
