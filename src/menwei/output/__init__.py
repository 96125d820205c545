"""Output: printed pass cards (QR symbols, PNG, PDF) and register files (CSV, PDF).

The domain lives in `menwei.core`; this package turns its values into files and never decides.
"""
