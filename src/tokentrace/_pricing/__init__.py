"""Pricing: money units (money), a model's price resolved once and a call's usage priced exactly
(prices), the bundled genai-prices database (database), modality rates (modal) and the further
inferences a provider bills beside its usage (inferences).
"""
