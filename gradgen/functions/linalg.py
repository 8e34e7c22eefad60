"""(being written)"""
METHODS: dict = {}
FUNCTIONS: list = []
