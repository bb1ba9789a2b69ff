package store

import (
	"bytes"
	"fmt"
	"testing"
)

func collect(kv KV, start, end string) []string {
	var out []string
	kv.Iterate(start, end, func(k string, v []byte) bool {
		out = append(out, k+"="+string(v))
		return true
	})
	return out
}

func TestOverlayMergesInOrder(t *testing.T) {
	s := OpenMem()
	b := s.Begin()
	for _, k := range []string{"a", "c", "e", "g"} {
		b.Set(k, []byte(k))
	}
	o := NewOverlay(b)
	o.Set("b", []byte("B"))
	o.Set("c", []byte("C")) // override
	o.Delete("e")           // hide
	o.Set("h", []byte("H")) // after the parent's last key
	for _, tc := range []struct {
		start, end string
		want       string
	}{
		{"", "", "[a=a b=B c=C g=g h=H]"},
		{"b", "g", "[b=B c=C]"},
		{"d", "", "[g=g h=H]"},
		{"h", "", "[h=H]"},
		{"x", "", "[]"},
	} {
		if got := fmt.Sprint(collect(o, tc.start, tc.end)); got != tc.want {
			t.Errorf("Iterate(%q,%q) = %s, want %s", tc.start, tc.end, got, tc.want)
		}
	}
	stopped := 0
	o.Iterate("", "", func(string, []byte) bool { stopped++; return stopped < 2 })
	if stopped != 2 {
		t.Errorf("early stop visited %d", stopped)
	}
	if _, ok := o.Get("e"); ok {
		t.Error("deleted key visible")
	}
	if got := fmt.Sprint(collect(b, "", "")); got != "[a=a c=c e=e g=g]" {
		t.Errorf("parent changed before Write: %s", got)
	}
	o.Write()
	if got := fmt.Sprint(collect(b, "", "")); got != "[a=a b=B c=C g=g h=H]" {
		t.Errorf("after Write: %s", got)
	}
}

func TestCommitPersistsAndHashChains(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Begin()
	b.Set("k1", []byte("v1"))
	b.Set("k2", []byte("v2"))
	h1 := b.AppHash(1)
	if err := s.Commit(b, 1, h1); err != nil {
		t.Fatal(err)
	}
	b = s.Begin()
	b.Delete("k1")
	h2 := b.AppHash(2)
	if err := s.Commit(b, 2, h2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Height() != 2 || !bytes.Equal(s.AppHash(), h2) {
		t.Fatalf("reopened at %d %x, want 2 %x", s.Height(), s.AppHash(), h2)
	}
	v, _ := s.View()
	if got := fmt.Sprint(collect(v, "", "")); got != "[k2=v2]" {
		t.Fatalf("reopened state %s", got)
	}
	// The same writes on another store give the same hashes; a different value does not.
	other := OpenMem()
	ob := other.Begin()
	ob.Set("k2", []byte("v2"))
	ob.Set("k1", []byte("v1"))
	if !bytes.Equal(ob.AppHash(1), h1) {
		t.Fatal("same writes, different hash")
	}
	third := OpenMem().Begin()
	third.Set("k1", []byte("v1"))
	third.Set("k2", []byte("v3"))
	if bytes.Equal(third.AppHash(1), h1) {
		t.Fatal("different writes, same hash")
	}
}

func TestViewIsolatedFromLaterCommits(t *testing.T) {
	s := OpenMem()
	b := s.Begin()
	b.Set("a", []byte("1"))
	_ = s.Commit(b, 1, b.AppHash(1))
	v, h := s.View()
	b = s.Begin()
	b.Set("a", []byte("2"))
	_ = s.Commit(b, 2, b.AppHash(2))
	if got, _ := v.Get("a"); string(got) != "1" || h != 1 {
		t.Fatalf("view saw %q at %d", got, h)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("write to a view did not panic")
		}
	}()
	v.Set("a", nil)
}
