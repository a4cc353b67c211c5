"""Output watermarks: keyed lexical marks, trigger canaries, a unicode tripwire, and their detector.

See ``docs/watermark.md``. The policy is :class:`WatermarkPolicy` (registered as ``watermark``).
"""

from policies.watermark.policy import WatermarkPolicy

__all__ = ["WatermarkPolicy"]
