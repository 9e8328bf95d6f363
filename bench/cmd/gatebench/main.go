// Command gatebench measures gatehouse against direct access, Caddy and
// nginx in one run and prints the tables of ratios and the performance
// targets. Run it as bench/run.sh from the repository root; see
// bench/README.md.
//
//	gatebench run [-quick] [-rounds N] [-modes headline,defaults] [-caddy BIN] [-out FILE]
//	gatebench backend -ports N       (started by run)
//	gatebench load KIND [flags]      (started by run)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(runMain(nil))
	}
	switch os.Args[1] {
	case "run":
		os.Exit(runMain(os.Args[2:]))
	case "backend":
		os.Exit(backendMain(os.Args[2:]))
	case "load":
		os.Exit(loadMain(os.Args[2:]))
	case "relay":
		os.Exit(relayMain(os.Args[2:]))
	case "-h", "-help", "--help", "help":
		fmt.Println("usage: gatebench run [-quick] [flags]   (see gatebench run -h)")
	default:
		os.Exit(runMain(os.Args[1:]))
	}
}
