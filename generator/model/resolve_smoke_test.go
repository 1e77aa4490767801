package model

import (
	"testing"

	"github.com/scratchgen/scratchgen/generator/spec"
)

func TestExampleResolves(t *testing.T) {
	doc, errs := spec.Parse([]byte(spec.Example("")))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs.Format("example"))
	}
	c, lk, errs := Resolve(doc, nil)
	if len(errs) > 0 {
		t.Fatalf("resolve: %s", errs.Format("example"))
	}
	if got := c.Node("worker-2").PodCIDR.String(); got != "10.10.7.0/24" {
		t.Errorf("worker-2 pod range = %s, want the pinned 10.10.7.0/24", got)
	}
	if got := c.Node("cp-1").PodCIDR.String(); got != "10.10.0.0/24" {
		t.Errorf("cp-1 pod range = %s", got)
	}
	if got := c.Node("worker-1").BridgeAddr.String(); got != "10.10.1.1/24" {
		t.Errorf("worker-1 bridge = %s", got)
	}
	if c.DNSIP.String() != "10.96.0.10" || c.APIServiceIP.String() != "10.96.0.1" {
		t.Errorf("service IPs %s %s", c.APIServiceIP, c.DNSIP)
	}
	if len(lk.PodCIDRs) != 3 {
		t.Errorf("lock %v", lk.PodCIDRs)
	}
	if c.Endpoint.URL() != "https://10.0.0.10:6443" {
		t.Errorf("endpoint %s", c.Endpoint.URL())
	}
}
