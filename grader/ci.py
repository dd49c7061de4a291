"""The GitHub Actions workflow `llm-lab init` writes into a workspace (.github/workflows/llm-lab.yml).

It installs llm-lab with CPU torch and grades every mission on push; the JUnit report is uploaded.
Set LLM_LAB_SOURCE (a repository variable) to where llm-lab is installed from; by default the
workflow installs it from PyPI. Not handled: self-hosted GPU runners (GPU checks skip on CI).
"""

WORKFLOW = """\
name: llm-lab
on: [push, pull_request, workflow_dispatch]
jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install llm-lab (CPU torch)
        run: |
          python -m pip install torch --index-url https://download.pytorch.org/whl/cpu
          python -m pip install "${{ vars.LLM_LAB_SOURCE || 'llm-lab' }}"
      - name: Grade
        env:
          HF_HUB_OFFLINE: "1"
          HF_DATASETS_OFFLINE: "1"
        run: llm-lab grade --all --workspace . --junit report.xml --json report.json
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: llm-lab-report
          path: |
            report.xml
            report.json
"""
