"""Reference LoRA and QLoRA for the `lora` mission: low-rank adapters written by hand, injected into
HuggingFace models, merged, saved, quantised to NF4 and fine-tuned on real data.

Read in this order:
    lora_linear  the LoRA layer around a frozen nn.Linear: y = base(x) + (α/r)·B·A·x
    conv1d       the same for GPT-2's Conv1D, whose weight is stored transposed
    inject       swap the target modules of a HuggingFace model for LoRA layers, freeze the rest
    merge        fold (α/r)·B·A into the base weight and back out again
    adapter      save and load only the adapter (and a trained head)
    nf4          blockwise absmax NF4 quantisation, two codes per byte
    double_quant the NF4 scales quantised again (8-bit, blocks of 256)
    qlora        a frozen NF4 base under an fp32 LoRA adapter
    finetune     MiniLM + LoRA + a classification head on movie-review sentiment
    causal       LoRA on the project's tiny GPT-2: adapt it to a new domain
    train        main(steps=..., metrics=...): `llm-lab train lora`

Only torch and transformers are used; peft and bitsandbytes are what the checks compare against.
"""
