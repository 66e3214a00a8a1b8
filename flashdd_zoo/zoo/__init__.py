"""Build recipes: teachers, distillation, evaluation, capacity search, build orchestration."""
