# -*- Python -*-
# lit configuration of the xlc suite: .mlir files (dialect, passes, codegen) and .test files
# (tools such as xlc-import), run against the tools of the build tree.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "xlc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.xlc_binary_root, "test")
# GoogleTest sources, fixtures and parity scripts live beside the lit tests.
config.excludes = ["reference", "runtime", "parity", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py.in"]

# Captured names must not leak between CHECK-LABEL sections.
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

config.substitutions.append(("%models", os.path.join(config.xlc_source_root, "models")))

tools = ["xlc-opt", "xlc-import", "xlc-compile", "xlc-dump", "xlc-tune"]
tool_dirs = [os.path.join(config.xlc_tools_dir, t) for t in tools]
tool_dirs.append(config.llvm_tools_dir)
llvm_config.add_tool_substitutions(tools, tool_dirs)

# Kernels compile with NVRTC where libnvrtc can be loaded (it can without a GPU).
import ctypes
for name in ("libnvrtc.so.13", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so"):
    try:
        ctypes.CDLL(name)
        config.available_features.add("nvrtc")
        break
    except OSError:
        pass
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.use_default_substitutions()
