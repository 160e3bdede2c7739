"""int8 versions of exported students, and optimum's export of the transformer teacher.

* ONNX: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, activations quantised on
  the fly) after ``quant_pre_process`` (``skip_symbolic_shape``: dynamo graphs need it). Only
  MatMul/Gemm weights become int8; the final L2 normalisation stays in float.
* TFLite: ai-edge-quantizer's dynamic-range recipe (int8 weights, float activations) on the
  fixed-shape file litert-torch wrote.
* Teacher text encoder: optimum's ``main_export`` to ONNX and ``ORTQuantizer`` dynamic int8,
  offline from the saved Hugging Face folder.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from export.console import captured_native_output, log_tail
from export.convert import ConversionError


def quantize_onnx(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of an ONNX file.

    :raises ConversionError: onnxruntime's quantiser failed.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        pre = Path(scratch) / "pre.onnx"
        # onnxruntime's quantiser logs its progress at INFO through the root logger: held at
        # WARNING for this call only, in case the application lowered it.
        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.WARNING))
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            # reduce_range (7-bit weights): on x86 CPUs without VNNI (AVX2 only) onnxruntime's
            # u8s8 kernel adds pairs of products in int16 and saturates; full-range weights
            # then cost parity (interest student cosine 0.97 on an AVX2-only EPYC host).
            quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        except Exception as exc:
            raise ConversionError(f"onnxruntime could not quantise {src.name}: {exc}") from exc
        finally:
            root.setLevel(level)
    return dst


def quantize_tflite(src: Path, dst: Path) -> Path:
    """Dynamic-range int8 (int8 weights, float activations) with ai-edge-quantizer.

    :raises ConversionError: ai-edge-quantizer is missing or failed, with its log.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    with captured_native_output() as log:
        try:
            from ai_edge_quantizer import quantizer, recipe

            qt = quantizer.Quantizer(str(src), recipe.dynamic_wi8_afp32())
            qt.quantize(enable_progress_report=False).export_model(str(dst), overwrite=True)
        except ImportError:
            raise ConversionError("TFLite int8 needs ai-edge-quantizer (with litert-torch): pip install 'edgerec[export]'") from None
        except Exception as exc:
            raise ConversionError(f"ai-edge-quantizer could not quantise {src.name}: {exc}\n{log_tail(log)}") from exc
    return dst


def export_text_teacher(hf_folder: Path, out: Path) -> dict[str, Path]:
    """Export the teacher's transformer (saved with ``save_pretrained``) to ONNX with optimum and
    quantise it to int8 with ``ORTQuantizer``; nothing is downloaded.

    :returns: ``{"fp32": model.onnx, "int8": model_quantized.onnx}`` under ``out``.
    :raises ConversionError: optimum failed.
    """
    out.mkdir(parents=True, exist_ok=True)
    try:
        from optimum.exporters.onnx import main_export
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except ImportError:
        raise ConversionError("the teacher export needs optimum-onnx: pip install 'edgerec[export]'") from None
    # optimum's exporter prints its tracing warnings and progress; they are kept with the error.
    with captured_native_output() as log:
        try:
            main_export(str(hf_folder), output=str(out), task="feature-extraction", local_files_only=True, do_validation=False)
            quantizer = ORTQuantizer.from_pretrained(str(out), file_name="model.onnx")
            qconfig = AutoQuantizationConfig.avx2(is_static=False, per_channel=True)
            quantizer.quantize(save_dir=str(out), quantization_config=qconfig)
        except Exception as exc:
            raise ConversionError(f"optimum could not export the text teacher from {hf_folder}: {exc}\n{log_tail(log)}") from exc
    return {"fp32": out / "model.onnx", "int8": out / "model_quantized.onnx"}
