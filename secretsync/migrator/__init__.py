"""The one-shot migration job: scan for plaintext secrets, plan, apply, roll back."""
