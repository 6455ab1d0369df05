"""Bit casts between float32 and uint32 for jitted code (no value conversion)."""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def u32_as_f32(typingctx, x):
    """Reinterprets the bits of a uint32 as a float32."""
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def f32_as_u32(typingctx, x):
    """Reinterprets the bits of a float32 as a uint32."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen
