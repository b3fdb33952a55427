namespace Squeeze.Gguf;

/// <summary>
/// The well-known GGUF metadata keys (llama.cpp's <c>LLM_KV_NAMES</c>, gguf-py's <c>Keys</c>), so that no
/// key is spelled as a string literal elsewhere. Keys of the form <c>{arch}.name</c> are functions of the
/// architecture name.
/// </summary>
public static class GgufKeys
{
    public static class General
    {
        public const string Type = "general.type";
        public const string Architecture = "general.architecture";
        public const string QuantizationVersion = "general.quantization_version";
        public const string Alignment = "general.alignment";
        public const string FileType = "general.file_type";
        public const string Name = "general.name";
        public const string Author = "general.author";
        public const string Version = "general.version";
        public const string Organization = "general.organization";
        public const string Finetune = "general.finetune";
        public const string Basename = "general.basename";
        public const string Description = "general.description";
        public const string QuantizedBy = "general.quantized_by";
        public const string SizeLabel = "general.size_label";
        public const string License = "general.license";
        public const string LicenseName = "general.license.name";
        public const string LicenseLink = "general.license.link";
        public const string Url = "general.url";
        public const string Doi = "general.doi";
        public const string Uuid = "general.uuid";
        public const string RepoUrl = "general.repo_url";
        public const string SourceUrl = "general.source.url";
        public const string SourceRepoUrl = "general.source.repo_url";
        public const string BaseModelCount = "general.base_model.count";
        public const string Tags = "general.tags";
        public const string Languages = "general.languages";
        public const string Datasets = "general.datasets";

        /// <summary><c>general.base_model.{i}.{field}</c> (field: name, author, version, organization, url, doi, uuid, repo_url).</summary>
        public static string BaseModel(int index, string field) => $"general.base_model.{index}.{field}";

        // Written by convert_hf_to_gguf.py from the model card and generation_config.json.
        public const string SourceDoi = "general.source.doi";
        public const string SourceUuid = "general.source.uuid";
        public const string DatasetCount = "general.dataset.count";
        public const string SamplingSequence = "general.sampling.sequence";
        public const string SamplingTopK = "general.sampling.top_k";
        public const string SamplingTopP = "general.sampling.top_p";
        public const string SamplingMinP = "general.sampling.min_p";
        public const string SamplingXtcProbability = "general.sampling.xtc_probability";
        public const string SamplingXtcThreshold = "general.sampling.xtc_threshold";
        public const string SamplingTemp = "general.sampling.temp";
        public const string SamplingPenaltyLastN = "general.sampling.penalty_last_n";
        public const string SamplingPenaltyRepeat = "general.sampling.penalty_repeat";
        public const string SamplingMirostat = "general.sampling.mirostat";
        public const string SamplingMirostatTau = "general.sampling.mirostat_tau";
        public const string SamplingMirostatEta = "general.sampling.mirostat_eta";

        /// <summary><c>general.dataset.{i}.{field}</c> (the same fields as a base model's).</summary>
        public static string Dataset(int index, string field) => $"general.dataset.{index}.{field}";
    }

    /// <summary>Hyperparameter keys prefixed by the architecture name (<c>llama.block_count</c>).</summary>
    public static class Arch
    {
        public static string VocabSize(string arch) => $"{arch}.vocab_size";
        public static string ContextLength(string arch) => $"{arch}.context_length";
        public static string EmbeddingLength(string arch) => $"{arch}.embedding_length";
        public static string BlockCount(string arch) => $"{arch}.block_count";
        public static string FeedForwardLength(string arch) => $"{arch}.feed_forward_length";
        public static string ExpertFeedForwardLength(string arch) => $"{arch}.expert_feed_forward_length";
        public static string UseParallelResidual(string arch) => $"{arch}.use_parallel_residual";
        public static string TensorDataLayout(string arch) => $"{arch}.tensor_data_layout";
        public static string ExpertCount(string arch) => $"{arch}.expert_count";
        public static string ExpertUsedCount(string arch) => $"{arch}.expert_used_count";
        public static string ExpertSharedCount(string arch) => $"{arch}.expert_shared_count";
        public static string ExpertWeightsScale(string arch) => $"{arch}.expert_weights_scale";
        public static string ExpertWeightsNorm(string arch) => $"{arch}.expert_weights_norm";
        public static string LeadingDenseBlockCount(string arch) => $"{arch}.leading_dense_block_count";
        public static string LogitScale(string arch) => $"{arch}.logit_scale";

        public static string AttentionHeadCount(string arch) => $"{arch}.attention.head_count";
        public static string AttentionHeadCountKv(string arch) => $"{arch}.attention.head_count_kv";
        public static string AttentionMaxAlibiBias(string arch) => $"{arch}.attention.max_alibi_bias";
        public static string AttentionClampKqv(string arch) => $"{arch}.attention.clamp_kqv";
        public static string AttentionKeyLength(string arch) => $"{arch}.attention.key_length";
        public static string AttentionValueLength(string arch) => $"{arch}.attention.value_length";
        public static string AttentionLayerNormEpsilon(string arch) => $"{arch}.attention.layer_norm_epsilon";
        public static string AttentionLayerNormRmsEpsilon(string arch) => $"{arch}.attention.layer_norm_rms_epsilon";
        public static string AttentionCausal(string arch) => $"{arch}.attention.causal";
        public static string AttentionSlidingWindow(string arch) => $"{arch}.attention.sliding_window";

        public static string RopeDimensionCount(string arch) => $"{arch}.rope.dimension_count";
        public static string RopeFreqBase(string arch) => $"{arch}.rope.freq_base";
        public static string RopeScaleLinear(string arch) => $"{arch}.rope.scale_linear";
        public static string RopeScalingType(string arch) => $"{arch}.rope.scaling.type";
        public static string RopeScalingFactor(string arch) => $"{arch}.rope.scaling.factor";
        public static string RopeScalingOriginalContextLength(string arch) => $"{arch}.rope.scaling.original_context_length";
        public static string RopeScalingFinetuned(string arch) => $"{arch}.rope.scaling.finetuned";
        public static string RopeScalingYarnLogMultiplier(string arch) => $"{arch}.rope.scaling.yarn_log_multiplier";
        public static string RopeScalingYarnExtFactor(string arch) => $"{arch}.rope.scaling.yarn_ext_factor";
        public static string RopeScalingYarnAttnFactor(string arch) => $"{arch}.rope.scaling.yarn_attn_factor";
        public static string RopeScalingYarnBetaFast(string arch) => $"{arch}.rope.scaling.yarn_beta_fast";
        public static string RopeScalingYarnBetaSlow(string arch) => $"{arch}.rope.scaling.yarn_beta_slow";
        public static string ExpertSharedFeedForwardLength(string arch) => $"{arch}.expert_shared_feed_forward_length";

        /// <summary>Every hyperparameter key above for <paramref name="arch"/>: lets tools recognise them.</summary>
        public static IEnumerable<string> All(string arch) =>
            typeof(Arch).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
                .Where(m => m.ReturnType == typeof(string) && m.GetParameters().Length == 1)
                .Select(m => (string)m.Invoke(null, [arch])!);
    }

    public static class Tokenizer
    {
        public const string Model = "tokenizer.ggml.model";
        public const string Pre = "tokenizer.ggml.pre";
        public const string Tokens = "tokenizer.ggml.tokens";
        public const string TokenType = "tokenizer.ggml.token_type";
        public const string TokenTypeCount = "tokenizer.ggml.token_type_count";
        public const string Scores = "tokenizer.ggml.scores";
        public const string Merges = "tokenizer.ggml.merges";
        public const string BosId = "tokenizer.ggml.bos_token_id";
        public const string EosId = "tokenizer.ggml.eos_token_id";
        public const string EotId = "tokenizer.ggml.eot_token_id";
        public const string EomId = "tokenizer.ggml.eom_token_id";
        public const string UnknownId = "tokenizer.ggml.unknown_token_id";
        public const string SeparatorId = "tokenizer.ggml.seperator_token_id";
        public const string PaddingId = "tokenizer.ggml.padding_token_id";
        public const string ClsId = "tokenizer.ggml.cls_token_id";
        public const string MaskId = "tokenizer.ggml.mask_token_id";
        public const string AddBos = "tokenizer.ggml.add_bos_token";
        public const string AddEos = "tokenizer.ggml.add_eos_token";
        public const string AddSep = "tokenizer.ggml.add_sep_token";
        public const string AddPrefix = "tokenizer.ggml.add_space_prefix";
        public const string RemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces";
        public const string PrecompiledCharsmap = "tokenizer.ggml.precompiled_charsmap";
        public const string HfJson = "tokenizer.huggingface.json";
        public const string RwkvWorld = "tokenizer.rwkv.world";
        public const string ChatTemplate = "tokenizer.chat_template";
        public const string FimPreId = "tokenizer.ggml.fim_pre_token_id";
        public const string FimSufId = "tokenizer.ggml.fim_suf_token_id";
        public const string FimMidId = "tokenizer.ggml.fim_mid_token_id";
        public const string FimPadId = "tokenizer.ggml.fim_pad_token_id";
        public const string FimRepId = "tokenizer.ggml.fim_rep_token_id";
        public const string FimSepId = "tokenizer.ggml.fim_sep_token_id";
        public const string NormalizerLowercase = "tokenizer.ggml.normalizer.lowercase";
        public const string NormalizerStripAccents = "tokenizer.ggml.normalizer.strip_accents";
        public const string SuppressTokens = "tokenizer.ggml.suppress_tokens";
        public const string ChatTemplates = "tokenizer.chat_templates";

        /// <summary><c>tokenizer.chat_template.{name}</c>: a named chat template besides the default one.</summary>
        public static string ChatTemplateNamed(string name) => $"tokenizer.chat_template.{name}";

        /// <summary>Deprecated spellings of the FIM ids that llama.cpp still reads.</summary>
        public const string PrefixId = "tokenizer.ggml.prefix_token_id";
        public const string SuffixId = "tokenizer.ggml.suffix_token_id";
        public const string MiddleId = "tokenizer.ggml.middle_token_id";
    }

    /// <summary>Written by llama-quantize.</summary>
    public static class Quantize
    {
        public const string ImatrixFile = "quantize.imatrix.file";
        public const string ImatrixDataset = "quantize.imatrix.dataset";
        public const string ImatrixEntriesCount = "quantize.imatrix.entries_count";
        public const string ImatrixChunksCount = "quantize.imatrix.chunks_count";
    }

    /// <summary>Written by gguf-split.</summary>
    public static class Split
    {
        public const string Count = "split.count";
        public const string Index = "split.no";
        public const string TensorsCount = "split.tensors.count";
    }

    /// <summary>GGUF imatrix files (llama-imatrix).</summary>
    public static class Imatrix
    {
        public const string Datasets = "imatrix.datasets";
        public const string ChunkCount = "imatrix.chunk_count";
        public const string ChunkSize = "imatrix.chunk_size";
    }
}
