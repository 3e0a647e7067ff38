package passes

import (
	"fmt"
	"slices"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Prune removes the nodes whose outputs no graph output needs, then the initializers no
// remaining node reads. Graph inputs stay (callers feed them by name). It returns how many
// nodes it removed.
//
//	a ─▶ N1 ─▶ b ─▶ N2 ─▶ out        a ─▶ N1 ─▶ b ─▶ N2 ─▶ out
//	          └──▶ N3 ─▶ unused  ⇒
//	W (read by N3 only)
func Prune(g *onnxpb.GraphProto) int {
	needed := map[string]bool{}
	for _, o := range g.GetOutput() {
		needed[o.GetName()] = true
	}
	keep := make([]bool, len(g.GetNode()))
	for i := len(g.GetNode()) - 1; i >= 0; i-- {
		n := g.GetNode()[i]
		for _, o := range n.GetOutput() {
			if needed[o] {
				keep[i] = true
				break
			}
		}
		if !keep[i] {
			continue
		}
		for _, x := range n.GetInput() {
			needed[x] = true
		}
		for _, name := range subgraphInputs(n) {
			needed[name] = true
		}
	}
	var nodes []*onnxpb.NodeProto
	for i, n := range g.GetNode() {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	removed := len(g.GetNode()) - len(nodes)
	g.Node = nodes
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool {
		return !needed[t.GetName()]
	})
	return removed
}

// subgraphInputs lists the names that a node's subgraphs (If, Loop, Scan bodies) read from
// the enclosing graph.
func subgraphInputs(n *onnxpb.NodeProto) []string {
	var names []string
	var walk func(g *onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for _, sn := range g.GetNode() {
			names = append(names, sn.GetInput()...)
			for _, a := range sn.GetAttribute() {
				if a.GetG() != nil {
					walk(a.GetG())
				}
				for _, sg := range a.GetGraphs() {
					walk(sg)
				}
			}
		}
	}
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil {
			walk(a.GetG())
		}
		for _, sg := range a.GetGraphs() {
			walk(sg)
		}
	}
	return names
}

// SortNodes puts a graph's nodes in topological order, keeping the given order wherever it
// already is one. A cycle, or an input produced by nothing, is an error.
func SortNodes(g *onnxpb.GraphProto) error {
	ready := map[string]bool{"": true}
	for _, v := range g.GetInput() {
		ready[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		ready[t.GetName()] = true
	}
	pending := slices.Clone(g.GetNode())
	sorted := make([]*onnxpb.NodeProto, 0, len(pending))
	for len(pending) > 0 {
		progress := false
		rest := pending[:0]
		for _, n := range pending {
			ok := true
			for _, x := range n.GetInput() {
				if !ready[x] {
					ok = false
					break
				}
			}
			if !ok {
				rest = append(rest, n)
				continue
			}
			for _, o := range n.GetOutput() {
				ready[o] = true
			}
			sorted = append(sorted, n)
			progress = true
		}
		pending = rest
		if !progress {
			n := pending[0]
			for _, x := range n.GetInput() {
				if !ready[x] {
					return fmt.Errorf("passes: sort: %s node %q reads %q, which no node, "+
						"input or initializer provides (or a cycle)", n.GetOpType(), n.GetName(), x)
				}
			}
		}
	}
	g.Node = sorted
	return nil
}
