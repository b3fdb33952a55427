namespace Squeeze.Oracle.Tests.Evaluation;

/// <summary>
/// llama-perplexity's arithmetic (tools/perplexity/perplexity.cpp at 815a2a591) written out plainly in the tests, apart
/// from Squeeze's library: applied to llama.cpp's own logits it gives "llama.cpp's number computed the same way".
/// Percentiles sort every value in memory, as llama.cpp does, independently of Squeeze's spilled selection.
/// </summary>
internal static class LlamaPerplexityReference
{
    /// <summary>llama.cpp's logits for every chunk (BOS at the start when <paramref name="bos"/> ≥ 0): rows for positions n_ctx/2 .. n_ctx−1.</summary>
    public static List<float[]> ChunkLogits(string modelPath, int[] tokens, int nCtx, int chunks, int bos)
    {
        using var oracle = new OracleModel(modelPath, contextSize: nCtx, batchSize: nCtx);
        var result = new List<float[]>();
        int first = nCtx / 2, vocab = oracle.VocabSize;
        for (int c = 0; c < chunks; c++)
        {
            oracle.ClearCache();
            var chunk = tokens.AsSpan(c * nCtx, nCtx).ToArray();
            if (bos >= 0) chunk[0] = bos;
            var all = oracle.Decode(chunk, 0, allLogits: true);
            result.Add(all.AsSpan(first * vocab).ToArray());
        }
        return result;
    }

    public static (double Ppl, double Uncertainty) Perplexity(List<float[]> chunkLogits, int[] tokens, int nCtx, int vocab)
    {
        int first = nCtx / 2;
        double nll = 0, nll2 = 0;
        long count = 0;
        for (int c = 0; c < chunkLogits.Count; c++)
            for (int j = 0; j < nCtx - 1 - first; j++)
            {
                var row = chunkLogits[c].AsSpan(j * vocab, vocab);
                int tok = tokens[c * nCtx + first + j + 1];
                float max = row[0];
                for (int i = 1; i < vocab; i++) max = Math.Max(max, row[i]);
                double sumExp = 0;
                for (int i = 0; i < vocab; i++) sumExp += MathF.Exp(row[i] - max);
                double logSoftmax = (row[tok] - max) - Math.Log(sumExp);
                nll += -logSoftmax;
                nll2 += logSoftmax * logSoftmax;
                count++;
            }
        nll2 /= count;
        nll /= count;
        double ppl = Math.Exp(nll);
        nll2 -= nll * nll;
        return (ppl, nll2 > 0 ? Math.Sqrt(nll2 / (count - 1)) * ppl : 0);
    }

    /// <summary>
    /// llama-perplexity's strided run (<c>perplexity_v2</c>) on llama.cpp's logits, with its set-up from <c>main()</c>:
    /// one sequence (n_batch &lt; 2·n_ctx), a context asked for n_ctx + stride/2 whose size as llama.cpp settles it
    /// (<c>llama_n_ctx</c>) is the window, n_batch = min(n_batch, n_ctx); each window decoded from an empty cache with every
    /// logit, its own first token (BOS is put in after the decode), the last <paramref name="stride"/> predictions
    /// scored through float probabilities. Returns the running PPL after each window and the window.
    /// </summary>
    public static (List<double> Running, int Window) Strided(string modelPath, int[] tokens, int nCtx, int nBatch, int stride, int chunks)
    {
        if (nBatch / nCtx > 1) throw new ArgumentException("one sequence only", nameof(nBatch));
        int batch = Math.Min(nBatch, nCtx);
        using var oracle = new OracleModel(modelPath, contextSize: nCtx + stride / 2, batchSize: batch);
        int window = oracle.ContextCells, vocab = oracle.VocabSize;
        int nChunk = Math.Min(chunks, (tokens.Length - window + stride - 1) / stride);
        var running = new List<double>();
        double nll = 0;
        int count = 0;
        for (int i = 0; i < nChunk; i++)
        {
            int start = i * stride;
            oracle.ClearCache();
            var logits = new List<float>();
            for (int j = 0; j < (window + batch - 1) / batch; j++)
            {
                int size = Math.Min(window - j * batch, batch);
                logits.AddRange(oracle.Decode(tokens.AsSpan(start + j * batch, size).ToArray(), j * batch, allLogits: true));
            }
            var all = logits.ToArray();
            for (int j = window - stride - 1; j < window - 1; j++)
            {
                var row = all.AsSpan(j * vocab, vocab);
                float max = row[0];
                foreach (float v in row) max = Math.Max(max, v);
                double sumExp = 0;
                var probs = new float[vocab];
                for (int k = 0; k < vocab; k++) { probs[k] = MathF.Exp(row[k] - max); sumExp += probs[k]; }
                for (int k = 0; k < vocab; k++) probs[k] = (float)(probs[k] / sumExp);
                nll += -MathF.Log(probs[tokens[start + j + 1]]);
                count++;
            }
            running.Add(Math.Exp(nll / count));
        }
        return (running, window);
    }

    /// <summary>The base file bytes llama-perplexity writes for these logits.</summary>
    public static byte[] BaseFile(List<float[]> chunkLogits, int[] tokens, int nCtx, int vocab)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write("_logits_"u8);
        w.Write(nCtx);
        w.Write(vocab);
        w.Write(chunkLogits.Count);
        for (int i = 0; i < nCtx * chunkLogits.Count; i++) w.Write(tokens[i]);
        int nv = 2 * ((vocab + 1) / 2) + 4, first = nCtx / 2;
        var record = new ushort[nv];
        foreach (var logits in chunkLogits)
            for (int j = 0; j < nCtx - 1 - first; j++)
            {
                var row = logits.AsSpan(j * vocab, vocab);
                float maxL = row[0], minL = row[0];
                for (int i = 1; i < vocab; i++) { maxL = Math.Max(maxL, row[i]); minL = Math.Min(minL, row[i]); }
                minL = Math.Max(minL, maxL - 16);
                double sumExp = 0;
                for (int i = 0; i < vocab; i++) sumExp += MathF.Exp(row[i] - maxL);
                float logSumExp = (float)Math.Log(sumExp);
                float minLogProb = minL - maxL - logSumExp;
                float scale = (maxL - minL) / 65535f;
                Array.Clear(record);
                if (scale != 0)
                {
                    float inv = 1 / scale;
                    for (int i = 0; i < vocab; i++)
                        record[4 + i] = row[i] > minL ? (ushort)NearestInt(inv * (row[i] - minL)) : (ushort)0;
                }
                w.Write(scale);
                w.Write(minLogProb);
                foreach (var q in record.AsSpan(4)) w.Write(q);
            }
        w.Flush();
        return ms.ToArray();
    }

    private static int NearestInt(float f)
    {
        float v = f + 12582912f;
        int i = BitConverter.SingleToInt32Bits(v);
        return (i & 0x007fffff) - 0x00400000;
    }

    public sealed record KlStats(double PplQ, double PplQUnc, double PplBase, double PplBaseUnc, double Cor, double LnRatio, double LnRatioUnc,
        double Ratio, double Diff, double DiffUnc, double Kld, double KldUnc, Dictionary<string, double> KldPct,
        double Dp, double DpUnc, Dictionary<string, double> DpPct, double Rms, double RmsUnc, double SameTop, double SameTopUnc);

    /// <summary>llama-perplexity's <c>kl_divergence</c> over llama.cpp's logits and a base file's bytes.</summary>
    public static KlStats KlDivergence(List<float[]> chunkLogits, byte[] baseFile, int vocab)
    {
        var r = new BinaryReader(new MemoryStream(baseFile));
        r.ReadBytes(8);
        int nCtx = r.ReadInt32(), nVocab = r.ReadInt32(), nChunk = r.ReadInt32();
        if (nVocab != vocab) throw new InvalidOperationException("vocab");
        var tokens = new int[nCtx * nChunk];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = r.ReadInt32();
        int nv = 2 * ((vocab + 1) / 2) + 4, first = nCtx / 2;
        double sNll = 0, sNll2 = 0, sB = 0, sB2 = 0, sNB = 0, sK = 0, sK2 = 0, sP = 0, sP2 = 0, sP4 = 0;
        long same = 0, count = 0;
        var kldValues = new List<float>();
        var dpValues = new List<float>();
        var q = new ushort[nv];
        for (int c = 0; c < chunkLogits.Count; c++)
            for (int j = 0; j < nCtx - 1 - first; j++)
            {
                for (int i = 0; i < nv; i++) q[i] = r.ReadUInt16();
                var logits = chunkLogits[c].AsSpan(j * vocab, vocab);
                int tok = tokens[c * nCtx + first + j + 1];
                float maxLogit = logits[0];
                int imax = 0;
                for (int i = 1; i < vocab; i++) if (logits[i] > maxLogit) { maxLogit = logits[i]; imax = i; }
                double sumExp = 0;
                for (int i = 0; i < vocab; i++) sumExp += MathF.Exp(logits[i] - maxLogit);
                float logSumExp = (float)Math.Log(sumExp);
                float scale = BitConverter.UInt32BitsToSingle(q[0] | ((uint)q[1] << 16));
                float minLogProb = BitConverter.UInt32BitsToSingle(q[2] | ((uint)q[3] << 16));
                float nll = maxLogit + logSumExp - logits[tok];
                sNll += nll; sNll2 += nll * nll;
                float nllBase = -(scale * q[4 + tok] + minLogProb);
                sB += nllBase; sB2 += nllBase * nllBase;
                sNB += nll * nllBase;
                maxLogit += logSumExp;
                double sum = 0;
                int imaxBase = -1;
                float pLogBaseMax = 0;
                for (int i = 0; i < vocab; i++)
                {
                    float pLogBase = scale * q[4 + i] + minLogProb;
                    if (i == 0 || pLogBase > pLogBaseMax) { pLogBaseMax = pLogBase; imaxBase = i; }
                    if (pLogBase > -16f) sum += MathF.Exp(pLogBase) * (pLogBase - logits[i] + maxLogit);
                }
                sK += sum; sK2 += sum * sum;
                count++;
                if (imax == imaxBase) same++;
                float pDiff = MathF.Exp(-nll) - MathF.Exp(-nllBase);
                sP += pDiff;
                double p2 = pDiff * pDiff;
                sP2 += p2; sP4 += p2 * p2;
                kldValues.Add((float)sum);
                dpValues.Add(pDiff);
            }
        kldValues.Sort();
        dpValues.Sort();
        (double, double) Mu(double s, double s2)
        {
            double f = s / count, df = s2 / count - f * f;
            return (f, df > 0 && count > 10 ? Math.Sqrt(df / (count - 1)) : 0);
        }
        double cov = (sNB / count - (sNll / count) * (sB / count)) / (count - 1);
        var lp = Mu(sNll, sNll2);
        var lb = Mu(sB, sB2);
        double ppl = Math.Exp(lp.Item1), pplU = ppl * lp.Item2, pb = Math.Exp(lb.Item1), pbU = pb * lb.Item2;
        double lr = lp.Item1 - lb.Item1, lrU = Math.Sqrt(lp.Item2 * lp.Item2 + lb.Item2 * lb.Item2 - 2 * cov);
        var kld = Mu(sK, sK2);
        var dp = Mu(sP, sP2);
        var mse = Mu(sP2, sP4);
        double rms = Math.Sqrt(mse.Item1);
        double top = 1.0 * same / count;
        return new KlStats(ppl, pplU, pb, pbU, cov / (lp.Item2 * lb.Item2), lr, lrU, Math.Exp(lr), ppl - pb,
            Math.Sqrt(pplU * pplU + pbU * pbU - 2 * ppl * pb * cov), kld.Item1, kld.Item2,
            Pct(kldValues, [("Maximum", 1f), ("99.9%", 0.999f), ("99.0%", 0.99f), ("95.0%", 0.95f), ("90.0%", 0.9f), ("Median", 0.5f), ("10.0%", 0.1f), ("5.0%", 0.05f), ("1.0%", 0.01f), ("0.1%", 0.001f), ("Minimum", 0f)]),
            dp.Item1, dp.Item2,
            Pct(dpValues, [("Maximum", 1f), ("99.9%", 0.999f), ("99.0%", 0.99f), ("95.0%", 0.95f), ("90.0%", 0.9f), ("75.0%", 0.75f), ("Median", 0.5f), ("25.0%", 0.25f), ("10.0%", 0.1f), ("5.0%", 0.05f), ("1.0%", 0.01f), ("0.1%", 0.001f), ("Minimum", 0f)]),
            rms, 0.5 / rms * mse.Item2, top, Math.Sqrt(top * (1 - top) / (count - 1)));
    }

    private static Dictionary<string, double> Pct(List<float> v, (string, float)[] wanted)
    {
        var d = new Dictionary<string, double>();
        foreach (var (name, f) in wanted)
        {
            if (name == "Median") { d[name] = v.Count % 2 == 0 ? 0.5f * (v[v.Count / 2] + v[v.Count / 2 - 1]) : v[v.Count / 2]; continue; }
            if (f <= 0) { d[name] = v[0]; continue; }
            if (f >= 1) { d[name] = v[^1]; continue; }
            float p = f * (v.Count - 1);
            int ip = (int)p;
            p -= ip;
            d[name] = (1 - p) * v[ip] + p * v[Math.Min(ip + 1, v.Count - 1)];
        }
        return d;
    }
}
