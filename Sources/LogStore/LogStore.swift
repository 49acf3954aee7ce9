// LogStore module
