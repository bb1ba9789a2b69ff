#!/bin/sh
# A small "training" job: fit y = w*x + b to data/points.csv by gradient descent on the mean squared error
# (least squares), printing the loss after each epoch (one pass over the data), then write the parameters to
# out/model.txt. Only sh and awk are needed. EPOCHS and LR come from the job's env: (defaults 30 and 0.05).
set -eu
EPOCHS=${EPOCHS:-30}
LR=${LR:-0.05}
mkdir -p out
awk -F, -v epochs="$EPOCHS" -v lr="$LR" '
NR == 1 { next }                       # header
NF >= 2 { x[n] = $1 + 0; y[n] = $2 + 0; n++ }
END {
	if (n == 0) { print "no data in data/points.csv" > "/dev/stderr"; exit 1 }
	w = 0; b = 0
	for (e = 1; e <= epochs; e++) {
		gw = 0; gb = 0
		for (i = 0; i < n; i++) { d = w * x[i] + b - y[i]; gw += 2 * d * x[i] / n; gb += 2 * d / n }
		w -= lr * gw; b -= lr * gb
		loss = 0
		for (i = 0; i < n; i++) { d = w * x[i] + b - y[i]; loss += d * d }
		printf "epoch %d/%d  loss %.6f  w %.4f  b %.4f\n", e, epochs, loss / n, w, b
	}
	printf "w = %.6f\nb = %.6f\nloss = %.6f\npoints = %d\nepochs = %d\n", w, b, loss / n, n, epochs > "out/model.txt"
}' data/points.csv
echo "model written to out/model.txt:"
cat out/model.txt
