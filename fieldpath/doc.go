// Package fieldpath writes the path of a field inside a configuration as
// every error, diff and warning names it: services[2].routes[0].paths[1],
// config["a.b"]. Validation in deploy, the placeholder walk and the
// policies' own configuration checks all build paths here, so that one
// field is named the same way wherever a problem with it is reported.
package fieldpath
