package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
)

// writeWeights streams every planned tensor into dir/DataFile, one tensor at a time: view
// its bytes in the mapped checkpoint, convert and/or transpose them in one pass into a
// scratch buffer (reused from tensor to tensor) when needed, append them to the side file.
// A tensor that needs neither is written straight from the mapping. The model is never
// held twice; the extra memory is one buffer the size of the largest converted tensor.
func (p *weightPlan) writeWeights(dir string, progress func(done, total int64)) (err error) {
	w, err := graphs.NewExternalWriter(dir, DataFile)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("export: %w", cerr)
		}
	}()
	total := p.totalBytes()
	var done int64
	var buf []byte // scratch
	width := graphs.ElemSize(p.elem)
	// TODO: a tensor is converted, then written; overlapping the two (double buffering)
	// would hide the conversion behind the write, at the cost of a second buffer.
	for _, j := range p.jobs {
		raw, err := p.src.Bytes(j.source)
		if err != nil {
			return fmt.Errorf("export: tensor %q: %w", j.source, err)
		}
		data := raw
		if j.layout == transposed || !sameElem(j.info.DType, p.elem) {
			buf = grow(buf, int(j.info.NumElements())*width)
			data = buf
			rows, cols := int(j.info.NumElements()), 1
			if j.layout == transposed {
				rows, cols = int(j.info.Shape[0]), int(j.info.Shape[1])
			}
			if err := convert(data, raw, j.info.DType, p.elem, rows, cols, j.layout == transposed); err != nil {
				return fmt.Errorf("export: tensor %q: %w", j.source, err)
			}
		}
		if err := w.Add(j.tensor, data); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		done += int64(len(data))
		if progress != nil {
			progress(done, total)
		}
	}
	return nil
}

// grow returns buf with length n, reallocating only when it is too small.
func grow(buf []byte, n int) []byte {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]byte, n)
}

// sameElem reports whether checkpoint dtype dt already is ONNX element type elem.
func sameElem(dt safetensors.DType, elem int32) bool {
	return (dt == safetensors.F32 && elem == graphs.Float) ||
		(dt == safetensors.F16 && elem == graphs.Float16)
}

// blockRows is the number of rows converted and transposed as one block (and the tile edge
// of the cache-blocked transpose).
const blockRows = 32

// parallelBytes is the tensor size from which the work is split across the CPUs.
const parallelBytes = 1 << 20

// convert writes the row-major (rows, cols) matrix raw, of checkpoint dtype dt, into dst
// as elements of elem (graphs.Float or graphs.Float16), transposed to (cols, rows) when
// asked. Each block of rows is converted into a small per-worker buffer, then transposed
// from there, so a conversion needs no full-size intermediate. Large tensors are split by
// row blocks across GOMAXPROCS goroutines.
func convert(dst, raw []byte, dt safetensors.DType, elem int32, rows, cols int, transpose bool) error {
	if !dt.IsFloat() || (elem != graphs.Float && elem != graphs.Float16) {
		return fmt.Errorf("cannot convert dtype %s to ONNX element type %d", dt, elem)
	}
	width, srcWidth := graphs.ElemSize(elem), int(dt.Size())
	same := sameElem(dt, elem)
	if !transpose { // one long row: split it into blocks of columns instead
		rows, cols = 1, rows*cols
		parallel(cols, len(raw), func(lo, hi int) {
			convertRun(dst[lo*width:hi*width], raw[lo*srcWidth:hi*srcWidth], dt, elem)
		})
		return nil
	}
	blocks := (rows + blockRows - 1) / blockRows
	parallel(blocks, len(raw), func(lo, hi int) {
		var blk []byte
		for b := lo; b < hi; b++ {
			r0, r1 := b*blockRows, min((b+1)*blockRows, rows)
			src := raw[r0*cols*srcWidth : r1*cols*srcWidth]
			if !same {
				blk = grow(blk, (r1-r0)*cols*width)
				convertRun(blk, src, dt, elem)
				src = blk
			}
			transposeBlock(dst, src, rows, cols, width, r0, r1)
		}
	})
	return nil
}

// parallel runs f on contiguous parts of [0, n): one call for small work (size bytes),
// else one goroutine per CPU.
func parallel(n, size int, f func(lo, hi int)) {
	workers := 1
	if size >= parallelBytes {
		workers = min(runtime.GOMAXPROCS(0), n)
	}
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}

// convertRun converts the elements of raw (dtype dt) into dst (elem), element by element:
// widening is exact, narrowing to binary16 rounds to nearest even.
func convertRun(dst, raw []byte, dt safetensors.DType, elem int32) {
	le := binary.LittleEndian
	n := len(raw) / int(dt.Size())
	switch {
	case sameElem(dt, elem):
		copy(dst, raw)
	case elem == graphs.Float && dt == safetensors.F16:
		for i := range n {
			le.PutUint32(dst[4*i:], math.Float32bits(safetensors.F16ToF32(le.Uint16(raw[2*i:]))))
		}
	case elem == graphs.Float && dt == safetensors.BF16:
		for i := range n {
			le.PutUint32(dst[4*i:], uint32(le.Uint16(raw[2*i:]))<<16)
		}
	case elem == graphs.Float && dt == safetensors.F64:
		for i := range n {
			f := float32(math.Float64frombits(le.Uint64(raw[8*i:])))
			le.PutUint32(dst[4*i:], math.Float32bits(f))
		}
	case dt == safetensors.F32:
		for i := range n {
			le.PutUint16(dst[2*i:], f32ToF16(le.Uint32(raw[4*i:])))
		}
	case dt == safetensors.BF16:
		for i := range n {
			le.PutUint16(dst[2*i:], f32ToF16(uint32(le.Uint16(raw[2*i:]))<<16))
		}
	case dt == safetensors.F64:
		// Rounding through float32 first gives the same binary16 as rounding directly.
		for i := range n {
			f := float32(math.Float64frombits(le.Uint64(raw[8*i:])))
			le.PutUint16(dst[2*i:], f32ToF16(math.Float32bits(f)))
		}
	}
}

// f32ToF16 rounds the float32 bits b to binary16 bits, nearest even. Values that stay
// normal binary16 numbers take a short path; the rest (zeros, subnormals, overflow,
// infinities, NaNs) go to safetensors.F32ToF16.
func f32ToF16(b uint32) uint16 {
	abs := b & 0x7fffffff
	// [2⁻¹⁴, 65520): normal in binary16, and rounding cannot overflow to infinity.
	if abs >= 0x38800000 && abs < 0x477ff000 {
		abs += 0x0fff + (abs>>13)&1 // round to nearest even; a carry bumps the exponent
		return uint16(b>>16)&0x8000 | uint16((abs-0x38000000)>>13)
	}
	return safetensors.F32ToF16(math.Float32frombits(b))
}

// transposeBlock writes rows [r0, r1) of the (rows, cols) matrix, given as src (those
// rows only, elements width bytes), into the (cols, rows) matrix dst. Elements are moved,
// not interpreted, so byte order does not matter; whole words are moved when the slices
// are aligned, byte arrays otherwise.
func transposeBlock(dst, src []byte, rows, cols, width, r0, r1 int) {
	aligned := uintptr(unsafe.Pointer(unsafe.SliceData(src)))%uintptr(width) == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(dst)))%uintptr(width) == 0
	switch {
	case width == 4 && aligned:
		transposeWords(view[uint32](dst), view[uint32](src), rows, cols, r0, r1)
	case width == 2 && aligned:
		transposeWords(view[uint16](dst), view[uint16](src), rows, cols, r0, r1)
	case width == 4:
		transposeWords(view[[4]byte](dst), view[[4]byte](src), rows, cols, r0, r1)
	case width == 2:
		transposeWords(view[[2]byte](dst), view[[2]byte](src), rows, cols, r0, r1)
	}
}

// view reinterprets b as a slice of T (b must be aligned for T).
func view[T uint16 | uint32 | [2]byte | [4]byte](b []byte) []T {
	var zero T
	n := len(b) / int(unsafe.Sizeof(zero))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// transposeWords is the cache-blocked transpose of rows [r0, r1) of a (rows, cols) matrix,
// src holding those rows only, into the (cols, rows) matrix dst. Within a tile the writes
// are contiguous and the reads strided: in the opposite order, dst's row stride maps the
// tile's lines to few cache sets and the transpose runs about 5x slower.
func transposeWords[T uint16 | uint32 | [2]byte | [4]byte](dst, src []T, rows, cols, r0, r1 int) {
	for rt := r0; rt < r1; rt += blockRows {
		re := min(rt+blockRows, r1)
		for ct := 0; ct < cols; ct += blockRows {
			for c := ct; c < min(ct+blockRows, cols); c++ {
				d := dst[c*rows+rt : c*rows+re]
				for k := range d {
					d[k] = src[(rt-r0+k)*cols+c]
				}
			}
		}
	}
}
