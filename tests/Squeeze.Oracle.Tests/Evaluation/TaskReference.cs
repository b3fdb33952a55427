using System.Text;
using Squeeze.Evaluation.Tasks;

namespace Squeeze.Oracle.Tests.Evaluation;

/// <summary>
/// llama-perplexity's task scoring transcribed loop by loop from tools/perplexity/perplexity.cpp (ggml 815a2a591), written
/// independently of Squeeze's scorers: every sequence is decoded alone from an empty cache with all logits, and llama.cpp's
/// batch rows are rebuilt from those. Tokens come from a caller-given tokenizer (llama.cpp's, through the oracle).
/// </summary>
internal sealed class TaskReference(Func<string, int[]> tokenize, Func<int[], float[]> allLogits, int vocab)
{
    private ReadOnlySpan<float> Row(float[] logits, int position) => logits.AsSpan(position * vocab, vocab);

    // compute_logprobs: float max, float sum of expf, logit - max - log(sum).
    private static float BatchLogProb(ReadOnlySpan<float> l, int tok)
    {
        float max = l[0];
        for (int j = 1; j < l.Length; j++) max = Math.Max(max, l[j]);
        float sum = 0;
        for (int j = 0; j < l.Length; j++) sum += MathF.Exp(l[j] - max);
        return l[tok] - max - MathF.Log(sum);
    }

    // softmax(): double sum of float exps, probabilities divided in double and stored as float.
    private static float[] Softmax(ReadOnlySpan<float> l)
    {
        float max = l[0];
        foreach (float v in l) max = Math.Max(max, v);
        double sum = 0;
        var p = new float[l.Length];
        for (int i = 0; i < l.Length; i++) { float e = MathF.Exp(l[i] - max); sum += e; p[i] = e; }
        for (int i = 0; i < l.Length; i++) p[i] = (float)(p[i] / sum);
        return p;
    }

    // A token vector as common_tokenize leaves it: reading one past the end gives 0.
    private static int At(int[] seq, int i) => i < seq.Length ? seq[i] : 0;

    private static int CommonPrefix(int[][] seqs)
    {
        int min = seqs.Min(s => s.Length), k = 0;
        while (k < min && seqs.All(s => s[k] == seqs[0][k])) k++;
        return k;
    }

    /// <summary>hellaswag_score for one task: the four endings' mean log-probabilities (double).</summary>
    public double[] HellaSwag(HellaSwagTask task)
    {
        var seqs = task.Endings.Select(e => tokenize(task.Context + " " + e)).ToArray();
        int cp = CommonPrefix(seqs);
        var logits = seqs.Select(allLogits).ToArray();
        var firstProbs = Softmax(Row(logits[0], cp - 1));
        var scores = new double[4];
        for (int s = 0; s < 4; s++)
        {
            int count = 1;
            double lp = MathF.Log(firstProbs[At(seqs[s], cp)]);
            for (int j = cp; j < seqs[s].Length - 1; j++) { lp += BatchLogProb(Row(logits[s], j), seqs[s][j + 1]); count++; }
            scores[s] = lp / count;
        }
        return scores;
    }

    /// <summary>multiple_choice_score for one task: each mc1 answer's mean log-probability (float).</summary>
    public double[] MultipleChoice(MultipleChoiceTask task)
    {
        var seqs = task.Mc1.Answers.Select(a => tokenize(task.Question + " " + a)).ToArray();
        int cp = CommonPrefix(seqs);
        var logits = seqs.Select(allLogits).ToArray();
        var firstProbs = Softmax(Row(logits[0], cp - 1));
        var scores = new double[seqs.Length];
        for (int s = 0; s < seqs.Length; s++)
        {
            int count = 1;
            float lp = MathF.Log(firstProbs[At(seqs[s], cp)]);
            for (int j = cp; j < seqs[s].Length - 1; j++) { lp += BatchLogProb(Row(logits[s], j), seqs[s][j + 1]); count++; }
            scores[s] = lp / count;
        }
        return scores;
    }

    /// <summary>winogrande_score for one task, with llama.cpp's batch rows (i_logits = 0) rebuilt and its size_t arithmetic.</summary>
    public double[] WinoGrande(WinoGrandeTask task)
    {
        var seq0 = tokenize(task.First + task.Choice1 + task.Second);
        var seq1 = tokenize(task.First + task.Choice2 + task.Second);
        int cp = CommonPrefix([seq0, seq1]);
        ulong nBase1 = (ulong)tokenize(task.First + task.Choice1).Length, nBase2 = (ulong)tokenize(task.First + task.Choice2).Length;
        var l0 = allLogits(seq0);
        var l1 = allLogits(seq1);
        // The batch: the prefix (logits for its last token), then every token of seq0 after it, then of seq1, all with logits.
        var rows = new List<float[]> { Row(l0, cp - 1).ToArray() };
        for (int i = cp; i < seq0.Length; i++) rows.Add(Row(l0, i).ToArray());
        for (int i = cp; i < seq1.Length; i++) rows.Add(Row(l1, i).ToArray());

        ulong len0 = (ulong)seq0.Length, len1 = (ulong)seq1.Length, ucp = (ulong)cp;
        bool skip = len0 - ucp > 3 && len1 - ucp > 3;
        ulong nb1 = skip ? nBase1 : ucp;
        ulong last1 = len0 - nb1 > 1 ? 1UL : 0UL;
        float score1 = 0;
        ulong li = nb1 - ucp;
        for (ulong j = nb1 - 1; j < len0 - 1 - last1; ++j) score1 += BatchLogProb(rows[checked((int)li++)], seq0[j + 1]);
        score1 /= len0 - nb1 - last1;
        ulong nb2 = skip ? nBase2 : ucp;
        ulong last2 = len1 - nb2 > 1 ? 1UL : 0UL;
        float score2 = 0;
        li = len0 - ucp + nb2 - ucp;
        for (ulong j = nb2 - 1; j < len1 - 1 - last2; ++j) score2 += BatchLogProb(rows[checked((int)li++)], seq1[j + 1]);
        score2 /= len1 - nb2 - last2;
        return [score1, score2];
    }

    public static Func<string, int[]> Utf8(Func<byte[], int[]> tokenizeBytes) => text => tokenizeBytes(Encoding.UTF8.GetBytes(text));
}
