package routes

import "github.com/hashicorp/hcl/v2"

// parseWithPanic runs Parse with the decoder's file reader made to panic.
func parseWithPanic() (*Config, *hcl.File, hcl.Diagnostics) {
	old := fileSchema
	fileSchema = nil // hcl panics on a nil schema
	defer func() { fileSchema = old }()
	return Parse([]byte(`domain = "example.com"`), "t.hcl")
}
