from llmproxy.cli.main import run

run()
