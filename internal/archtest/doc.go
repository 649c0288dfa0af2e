// Package archtest holds no code, only the tests that keep the project's
// architecture: the admin node (adminnode/), the node manager
// (nodemanager/) and the gateway (gateway/) share code only through the
// packages each publishes as its contract with the others (contracts in
// imports_test.go) and through shared packages outside the three trees;
// neither contracts nor shared packages carry process logic. README.md's
// architecture section states the rule.
package archtest
