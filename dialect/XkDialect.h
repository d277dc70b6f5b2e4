//===- XkDialect.h - The xk kernel-level dialect ----------------*- C++ -*-===//
#ifndef XLC_DIALECT_XKDIALECT_H
#define XLC_DIALECT_XKDIALECT_H

#include "dialect/XlstmDialect.h"

#include "dialect/XkEnums.h.inc"

#include "dialect/XkDialect.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/XkAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialect/XkOps.h.inc"

#endif // XLC_DIALECT_XKDIALECT_H
