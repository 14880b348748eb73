// Command broken does not compile, on purpose: it tests build error reporting.
package main

func main() {
	var n int = "not a number"
	_ = n
}
