// Schema of mmeac's compiled kernel and the Python module it loads with.
//
// The kernel lives in the `mmeac_C` namespace of PyTorch's dispatcher. It is
// the CPU forward of the Python-level op mmeac::core_periphery_attention
// (mmeac/ops/core_periphery_attention.py, which owns autograd, the fake
// kernel and input checks) and is not meant to be called directly.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import mmeac._C` loads this library, which runs the registrations below.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr,
                                      -1, nullptr};
  return PyModule_Create(&module);
}
}

TORCH_LIBRARY(mmeac_C, m) {
  // Core-periphery attention forward: (out, lse), both token-major.
  m.def("cp_attention_fwd(Tensor q, Tensor k, Tensor v, int num_cores, "
        "float scale) -> (Tensor, Tensor)");
}
